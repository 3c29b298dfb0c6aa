"""What ``Dispatcher`` and ``AsyncDispatcher`` share: the jobs, chains and batches one call
builds, and what they make of the queue's answers, so both keep the same promises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from foundry.application.chains import chain_jobs
from foundry.application.job_maker import (
    AfterCommit,
    FirstDispatchWarning,
    Item,
    JobMaker,
    Target,
)
from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError, Job, JobNotFound, JobState
from foundry.ports import Clock, CommitHooks

if TYPE_CHECKING:
    from foundry.application.batches import BatchMaker, Step
    from foundry.domain import Batch
    from foundry.ports import BatchRecord

Port = TypeVar("Port")


class DispatcherBase:
    """The building half of a dispatcher: jobs from the registry's defaults and the call's
    options, stamped with ``clock``'s time; the sending half is the subclass's."""

    def __init__(
        self,
        registry: JobRegistry,
        clock: Clock,
        *,
        first_dispatch_warning: str | None,
        commit_hooks: CommitHooks | None,
    ) -> None:
        self._jobs = JobMaker(registry, clock)
        self._first = FirstDispatchWarning(first_dispatch_warning)
        self._after_commit = AfterCommit(commit_hooks, registry.after_commit)

    @cached_property
    def _batch_maker(self) -> BatchMaker:
        # Built at the first batch: a dispatcher that sends none never loads batch code.
        from foundry.application.batches import BatchMaker  # noqa: PLC0415

        return BatchMaker(self._jobs)

    def build(
        self, target: Target, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> Job:
        """The job ``dispatch`` would enqueue (options left ``None`` keep the defaults), with
        the metadata the registry's ``on_dispatch`` hooks add."""
        return self._jobs.build(target, payload, **options)

    def build_batch(
        self,
        jobs: Iterable[Step],
        *,
        then: Step | None = None,
        catch: Step | None = None,
        finally_: Step | None = None,
        allow_failures: bool = False,
        queue: str | None = None,
        batch_id: str | None = None,
    ) -> Batch:
        """The batch ``batch`` would enqueue (for a step of ``chain``)."""
        return self._batch_maker.make(
            jobs,
            {"then": then, "catch": catch, "finally": finally_},
            allow_failures=allow_failures,
            queue=queue,
            batch_id=batch_id,
        )

    def _chain(
        self,
        steps: Iterable[Item | Job | Batch],
        queue: str | None,
        result_as: str | None,
        chain_id: str | None,
    ) -> tuple[list[Job | Batch], list[Job] | None]:
        """A chain's steps, built before anything is sent; and its jobs when it holds no
        batch (then it is sent as ``dispatch_many`` sends, no batch store needed)."""
        units = chain_jobs(self.build, list(steps), queue, result_as, chain_id)
        jobs = [unit for unit in units if isinstance(unit, Job)]
        return units, jobs if len(jobs) == len(units) else None


def batch_store(port: Port | None) -> Port:
    """The dispatcher's batch store; ``ConfigurationError`` saying how to get one if none."""
    if port is None:
        raise ConfigurationError(
            "this dispatcher was built without a batch store: build it with "
            "batches=<the queue> (foundry.connect()'s dispatchers do: every queue "
            "backend keeps batches)"
        )
    return port


def chained_jobs(units: list[Job | Batch]) -> list[Job]:
    """The jobs of a chain's steps, a batch's members in its place (to name them in logs)."""
    return [job for unit in units for job in ((unit,) if isinstance(unit, Job) else unit.jobs)]


def transaction_store(port: Port | None, after_commit: bool | None) -> Port:
    """The port that writes in the caller's transaction (``connection=``);
    ``ConfigurationError`` if ``after_commit`` is asked too or the queue is not in a
    database."""
    if after_commit:
        raise ConfigurationError(
            "dispatch takes connection= (written in your transaction) or after_commit=True "
            "(sent after it commits), not both"
        )
    if port is None:
        raise ConfigurationError(
            "dispatch with connection= writes the job in your database transaction, which "
            "needs a queue in that database: set QUEUE_DRIVER=postgres and DATABASE_URL"
        )
    return port


def found_batch(record: BatchRecord | None, batch_id: str, queue: str | None) -> BatchRecord:
    """The batch's record; ``BatchNotFound`` if no such batch is kept."""
    if record is None:
        from foundry.domain import BatchNotFound  # noqa: PLC0415 - defined with the batches

        raise BatchNotFound(batch_id, queue)
    return record


def not_a_job(error: JobNotFound, batch: BatchRecord | None, instead: str) -> JobNotFound:
    """``error``, or when its id is a batch's (a chain returns one for a batch step), a
    ``JobNotFound`` saying so and naming the dispatcher method to call ``instead``."""
    if batch is None:
        return error
    better = JobNotFound(error.job_id, error.queue)
    better.args = (f"{error.job_id!r} is a batch, not a job: use {instead}({error.job_id!r})",)
    return better


def found_state(state: JobState | None, job_id: str, queue: str | None) -> JobState:
    """A cancelled job's state; ``JobNotFound`` if no such job is known."""
    if state is None:
        raise JobNotFound(job_id, queue)
    return state
