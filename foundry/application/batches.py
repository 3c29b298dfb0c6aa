"""Batches as dispatchers build them: members from (handler, payload) pairs or built jobs,
all in one queue, and the callbacks (each told its batch's id in its metadata)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from foundry.application.job_maker import Item, JobMaker, Target
from foundry.domain import Batch, InvalidJob, Job, new_job_id
from foundry.domain.batch import BATCH_KEY

#: A member or callback of a batch: a (handler, payload) pair or a job from ``build``; a
#: callback may also be a bare handler (no payload).
Step = Item | Job | Target


class BatchMaker:
    """Builds ``Batch`` values for the registry's handlers (through ``jobs``)."""

    def __init__(self, jobs: JobMaker) -> None:
        self._jobs = jobs

    def make(
        self,
        steps: Iterable[Step],
        callbacks: Mapping[str, Step | None],
        *,
        allow_failures: bool,
        queue: str | None,
        batch_id: str | None,
    ) -> Batch:
        """The batch (raises ``InvalidJob`` / ``UnknownHandler`` before anything is sent)."""
        items = list(steps)
        pairs = [_pair(item) for item in items if not isinstance(item, Job)]
        made = iter(self._jobs.many(pairs))  # type: ignore[arg-type]  # many names bad items
        members = [item if isinstance(item, Job) else next(made) for item in items]
        if not members:
            raise InvalidJob("jobs", "a batch needs at least one job")
        home = queue or members[0].queue
        members = [job if job.queue == home else attrs.evolve(job, queue=home) for job in members]
        chosen = batch_id or new_job_id()
        return Batch(
            members,
            {
                name: self._callback(name, step, home, chosen)
                for name, step in callbacks.items()
                if step is not None
            },
            allow_failures=allow_failures,
            id=chosen,
        )

    def _callback(self, name: str, step: Step, queue: str, batch_id: str) -> Job:
        if isinstance(step, Job):
            job = step
        elif isinstance(step, tuple) and len(step) == 2:
            target, payload = step
            job = self._jobs.build(target, payload, queue=queue)
        elif isinstance(step, str) or callable(step):
            job = self._jobs.build(step, None, queue=queue)
        else:
            raise InvalidJob(
                "callbacks",
                f"the {name} callback is {step!r:.80}: give one (handler, payload) pair, a job "
                "from build() or a handler (for several jobs, one callback that dispatches them)",
            )
        return attrs.evolve(job, queue=queue, metadata={**job.metadata, BATCH_KEY: batch_id})


def _pair(item: object) -> tuple[object, ...]:
    """``item``, a batch's (handler, payload) pair, as a tuple; ``InvalidJob`` naming what it
    got instead."""
    if not isinstance(item, tuple | list) or len(item) != 2:
        raise InvalidJob(
            "jobs",
            f"a batch takes (handler, payload) pairs or jobs from build(), got {item!r:.80}; "
            "write batch([(resize, {'image': 1}), ...])",
        )
    return tuple(item)
