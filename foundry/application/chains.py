"""Chains: jobs that run one after another, each waiting for the previous one (``Job.after``),
the later steps cancelled if one fails; and the previous step's result handed to the next as a
keyword argument, when the chain asks for it (``RESULT_AS`` in the job's metadata)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from foundry.domain import AfterFailure, FoundryError, InvalidJob, Job
from foundry.domain.job import ID_RULE, is_job_id
from foundry.ports import QueuePort

if TYPE_CHECKING:
    from foundry.domain import Batch

#: Builds one job as ``Dispatcher.build`` does: (target, payload, **Job fields).
Build = Callable[..., Job]

#: The metadata key naming the keyword argument that gets the previous step's result.
RESULT_AS = "foundry.result_as"


class PreviousResultGone(FoundryError):
    """The previous step's record, whose result a chained job takes, is no longer kept: the
    job can never get it, so it goes dead rather than wait for it."""

    def __init__(self, job: Job, previous: str, name: str) -> None:
        self.reason = f"the result of job {previous} it takes as {name!r} is no longer kept"
        super().__init__(
            f"job {job.id} of a chain takes the result of job {previous!r} as {name!r}, and "
            "that job's record is no longer kept (a completed record is kept completed_ttl, "
            "an hour by default): dispatch the chain again, or the job with that argument"
        )


class PreviousResults:
    """Reads, in the worker's parent, the result a chained job asked for."""

    def __init__(self, queue: QueuePort) -> None:
        self._queue = queue

    def payload(self, job: Job) -> dict[str, Any] | None:
        """The job's payload with the previous step's result under the name its chain gave,
        or ``None`` when it asked for none. Raises ``PreviousResultGone`` when that result is
        no longer kept, another ``FoundryError`` when the queue cannot say now (the caller gives
        the job back to try later)."""
        if not needs_previous(job):
            return None
        name = job.metadata[RESULT_AS]
        record = self._queue.get(job.after[0], job.queue)
        if record is None:
            raise PreviousResultGone(job, job.after[0], name)
        return {**job.payload, name: record.result}


def needs_previous(job: Job) -> bool:
    """Whether ``job`` takes the result of the job before it in its chain."""
    return bool(job.metadata.get(RESULT_AS)) and bool(job.after)


def chain_jobs(
    build: Build,
    steps: list[tuple[Any, Mapping[str, Any] | None] | Job | Batch],
    queue: str | None,
    result_as: str | None,
    chain_id: str | None = None,
) -> list[Job | Batch]:
    """The jobs and batches of a chain (see ``Dispatcher.chain``), built before anything is
    sent; with ``chain_id``, step ``n``'s id is ``<chain_id>.<n>``."""
    from foundry.domain.batch import Batch  # noqa: PLC0415 - a worker never builds a chain

    if not steps:
        raise InvalidJob("steps", "a chain needs at least one (handler, payload) step")
    if result_as is not None and not (isinstance(result_as, str) and result_as.isidentifier()):
        raise InvalidJob("result_as", f"{result_as!r} must be a keyword argument's name")
    if result_as is not None and any(isinstance(step, Batch) for step in steps):
        raise InvalidJob("result_as", "a chain holding a batch cannot pass results on")
    _check_chain_id(chain_id, len(steps))
    _built_once(steps)
    units: list[Job | Batch] = []
    home = queue
    for number, step in enumerate(steps, start=1):
        previous = units[-1].id if units else None
        step_id = None if chain_id is None else f"{chain_id}.{number}"
        if isinstance(step, Batch):
            units.append(_after_step(_renamed(step, step_id), home, previous))
            home = home or step.queue
            continue
        job = _job_step(build, step, number, queue=home, previous=previous, result_as=result_as)
        units.append(job if step_id is None else attrs.evolve(job, id=step_id))
        home = home or job.queue
    return units


def _built_once(steps: list[Any]) -> None:
    """``InvalidJob`` for a job from ``build`` given as two steps (it would wait for itself)."""
    seen: dict[str, int] = {}
    for number, step in enumerate(steps, start=1):
        if isinstance(step, Job) and seen.setdefault(step.id, number) != number:
            raise InvalidJob(
                "steps",
                f"step {number} of the chain is the job of step {seen[step.id]} (id "
                f"{step.id!r}): each step is used once; build() another job for it",
            )


def _check_chain_id(chain_id: object, steps: int) -> None:
    """``InvalidJob`` unless every step id ``chain_id`` makes follows the id rule."""
    if chain_id is None or (isinstance(chain_id, str) and is_job_id(f"{chain_id}.{steps}")):
        return
    raise InvalidJob(
        "chain_id",
        f"{chain_id!r} makes the steps' ids ({chain_id}.1 ... {chain_id}.{steps}), which must "
        f"be {ID_RULE}: pick a shorter id of those characters",
    )


def _job_step(
    build: Build,
    step: object,
    number: int,
    *,
    queue: str | None,
    previous: str | None,
    result_as: str | None,
) -> Job:
    """Step ``number`` of a chain as a job in ``queue``, waiting for ``previous`` (cancelled
    if it fails) and, with ``result_as``, marked to take its result."""
    if isinstance(step, Job):
        job = _built_step(step, number, queue=queue, previous=previous, result_as=result_as)
    else:
        job = _pair_step(build, step, number, queue=queue, previous=previous, result_as=result_as)
    if job.unique is not None:
        raise InvalidJob(
            "unique",
            f"step {number} of the chain ({job.name}) holds a unique key: a duplicate would not "
            "be stored and the steps after it would wait for it forever; dispatch that handler "
            "on its own, or register one without unique= for chains",
        )
    return job


def _pair_step(
    build: Build,
    step: object,
    number: int,
    *,
    queue: str | None,
    previous: str | None,
    result_as: str | None,
) -> Job:
    """Step ``number``, a (handler, payload) pair, built as ``_job_step`` says."""
    target, payload = _pair(step, number)
    if previous is None:
        return build(target, payload, queue=queue)
    data = dict(payload or {})
    if result_as is not None:
        _check_free(data, result_as, number)
        data[result_as] = None  # filled with the previous result when the step runs
    job = build(target, data, queue=queue, after=(previous,), after_failure=AfterFailure.CANCEL)
    if result_as is not None:
        job = attrs.evolve(job, metadata={**job.metadata, RESULT_AS: result_as})
    return job


def _built_step(
    job: Job, number: int, *, queue: str | None, previous: str | None, result_as: str | None
) -> Job:
    """Step ``number``, a job from ``build``, moved to ``queue`` and waiting for ``previous``
    (besides what it waits for already)."""
    if previous is not None and result_as is not None:
        raise InvalidJob(
            "result_as",
            f"step {number} of the chain is a job from build(), whose payload is checked "
            "already: result_as passes results only to (handler, payload) steps; give that "
            f"step as ({job.name!r}, payload)",
        )
    if previous is None:
        return job if queue is None else attrs.evolve(job, queue=queue)
    return attrs.evolve(
        job,
        queue=queue or job.queue,
        after=(*job.after, previous),
        after_failure=AfterFailure.CANCEL,
    )


def _pair(step: object, number: int) -> tuple[Any, Mapping[str, Any] | None]:
    """Step ``number`` as (handler, payload); ``InvalidJob`` naming what it got instead."""
    if not isinstance(step, tuple | list) or len(step) != 2:
        raise InvalidJob(
            "steps",
            f"step {number} of the chain is {step!r:.80}: give (handler, payload) pairs, "
            "jobs from build() or batches from build_batch, e.g. "
            "chain([(fetch, {'url': u}), (parse, {})])",
        )
    return step[0], step[1]


def _check_free(payload: Mapping[str, Any], result_as: str, number: int) -> None:
    """``InvalidJob`` if step ``number``'s own payload holds the argument ``result_as`` fills
    (the previous result would silently replace it)."""
    if result_as in payload:
        raise InvalidJob(
            "result_as",
            f"step {number} of the chain gives {result_as!r} in its payload, which result_as "
            "fills with the previous step's result: drop it, or pick another result_as",
        )


def _renamed(batch: Batch, batch_id: str | None) -> Batch:
    """``batch`` under ``batch_id`` (its callbacks told so), or as it is without one."""
    if batch_id is None:
        return batch
    from foundry.domain.batch import BATCH_KEY  # noqa: PLC0415 - a worker never builds a chain

    callbacks = {
        which: attrs.evolve(job, metadata={**job.metadata, BATCH_KEY: batch_id})
        for which, job in batch.callbacks.items()
    }
    return attrs.evolve(batch, id=batch_id, callbacks=callbacks)


def _after_step(batch: Batch, queue: str | None, previous: str | None) -> Batch:
    """``batch`` in ``queue``, each member also waiting for the chain's previous step."""
    if queue is None and previous is None:
        return batch
    members = [
        attrs.evolve(
            job,
            queue=queue or job.queue,
            after=job.after if previous is None else (*job.after, previous),
            after_failure=AfterFailure.CANCEL if previous is not None else job.after_failure,
        )
        for job in batch.jobs
    ]
    callbacks = {
        which: attrs.evolve(job, queue=queue or job.queue) for which, job in batch.callbacks.items()
    }
    return attrs.evolve(batch, jobs=members, callbacks=callbacks)
