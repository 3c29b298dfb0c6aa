"""Chains: jobs that run one after another, each waiting for the previous one (``Job.after``),
the later steps cancelled if one fails; and the previous step's result handed to the next as a
keyword argument, when the chain asks for it (``RESULT_AS`` in the job's metadata)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from foundry.domain import AfterFailure, FoundryError, InvalidJob, Job
from foundry.ports import QueuePort

#: Builds one job as ``Dispatcher.build`` does: (target, payload, **Job fields).
Build = Callable[..., Job]

#: The metadata key naming the keyword argument that gets the previous step's result.
RESULT_AS = "foundry.result_as"


class PreviousResults:
    """Reads, in the worker's parent, the result a chained job asked for."""

    def __init__(self, queue: QueuePort) -> None:
        self._queue = queue

    def payload(self, job: Job) -> dict[str, Any] | None:
        """The job's payload with the previous step's result under the name its chain gave,
        or ``None`` when it asked for none. Raises ``FoundryError`` when the queue cannot say
        (the caller gives the job back to try later)."""
        name = job.metadata.get(RESULT_AS)
        if not name or not job.after:
            return None
        record = self._queue.get(job.after[0], job.queue)
        if record is None:
            raise FoundryError(f"the result of job {job.after[0]!r} is no longer kept")
        return {**job.payload, name: record.result}


def chain_jobs(
    build: Build,
    steps: list[tuple[Any, Mapping[str, Any] | None]],
    queue: str | None,
    result_as: str | None,
) -> list[Job]:
    """The jobs of a chain (see ``Dispatcher.chain``), built before anything is sent."""
    if not steps:
        raise InvalidJob("steps", "a chain needs at least one (handler, payload) step")
    if result_as is not None and not result_as.isidentifier():
        raise InvalidJob("result_as", f"{result_as!r} must be a keyword argument's name")
    first_target, first_payload = steps[0]
    jobs = [build(first_target, first_payload, queue=queue)]
    for target, payload in steps[1:]:
        data = dict(payload or {})
        if result_as is not None:
            data[result_as] = None  # filled with the previous result when the step runs
        job = build(
            target,
            data,
            queue=jobs[0].queue,
            after=(jobs[-1].id,),
            after_failure=AfterFailure.CANCEL,
        )
        if result_as is not None:
            job = attrs.evolve(job, metadata={**job.metadata, RESULT_AS: result_as})
        jobs.append(job)
    return jobs
