"""Middleware: code that runs around every job, in every process that touches one.

Subclass ``Middleware``, override the hooks you need and register an instance with
``registry.use(...)``; the worker gets it with the registry (``foundry work --app``) and the
producer with the ``Dispatcher`` built on the same registry. Where each hook runs:

* producer, in ``Dispatcher.dispatch``/``dispatch_many``/``build``, and the scheduler, for
  each periodic schedule's tick: ``on_dispatch``;
* each pool child: ``after_fork`` once it is set up, ``before_exit`` when it stops cleanly;
* each attempt, in the child: ``before_job``, the handler, ``on_error`` if it failed,
  ``after_job``;
* the pool's parent: the ``PoolObserver`` events (``job_started``, ``job_finished``,
  ``child_recycled``, ``leases_renewed``).

Order: ``before_job`` and ``on_error`` hooks run in registration order, ``after_job`` hooks in
reverse, so the first middleware registered wraps all the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from foundry.application.context import JobContext
from foundry.domain import Job

if TYPE_CHECKING:
    from foundry.application.outcome import Outcome
    from foundry.ports import Lease


@attrs.frozen
class JobOutcome:
    """How an attempt ended in the child: ``error`` is ``None`` when it succeeded with
    ``result``."""

    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the attempt succeeded (so far: a later ``after_job`` hook may still fail
        it)."""
        return self.error is None


class Middleware:
    """Hooks around jobs; every one is a no-op here. Override the ones you need.

    A hook in the child that raises fails the attempt with its exception (``PermanentFailure``
    gives up at once, as from a handler); the retry policy decides the rest. ``after_fork``
    and ``before_exit`` errors are logged and the child carries on; parent events' errors are
    logged and ignored. A producer hook's exception reaches the caller of ``dispatch`` and
    nothing is enqueued (for a schedule's tick: logged, and that tick skipped).
    """

    def on_dispatch(self, job: Job) -> Mapping[str, str] | None:
        """Metadata to add to ``job`` before it is enqueued (e.g. a trace context), or
        ``None``. Runs in the producer, and in the scheduler for each schedule's tick; the
        handler's ``current_job().metadata`` has it."""
        return None

    def after_fork(self) -> None:
        """In each pool child once it is set up, before its first job: open per-process
        clients, close connections inherited from the parent."""

    def before_exit(self) -> None:
        """In each pool child that stops cleanly (not one killed at a time limit)."""

    def before_job(self, job: JobContext) -> None:
        """Before the handler; raise to fail the attempt without running it."""

    def on_error(self, job: JobContext, error: BaseException) -> None:
        """The handler (or a ``before_job`` hook) raised ``error``; raise another exception
        to fail the attempt with it instead (``PermanentFailure``: give up)."""

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        """After every attempt that ran its hooks, with how it ended; raise to fail it."""

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """Parent: ``lease``'s job was handed to child ``child_pid``."""

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """Parent: ``lease``'s attempt ended with ``outcome`` (completed, retried, dead,
        released or abandoned: see ``Outcome``)."""

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Parent: child ``child_pid`` is replaced for reaching a limit."""

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Parent: a batched renew kept ``kept`` leases and lost ``lost``."""
