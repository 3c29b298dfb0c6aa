"""The registry's middleware, and the one place each kind of hook is called from."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from foundry.application.context import JobContext
from foundry.application.middleware import JobOutcome, Middleware
from foundry.application.outcome import Outcome, PoolObserver
from foundry.domain import InvalidJob, Job
from foundry.ports import Lease

log = logging.getLogger(__name__)

_HOOKS = (
    "on_dispatch",
    "after_fork",
    "before_exit",
    "before_job",
    "on_error",
    "after_job",
    "job_started",
    "job_finished",
    "child_recycled",
    "leases_renewed",
)


def _stray_hooks(kind: type[Middleware]) -> list[str]:
    """Methods of ``kind`` named like a hook (``before_``, ``after_``, ``on_``) that none is."""
    own = {
        name for klass in kind.__mro__ if klass not in Middleware.__mro__ for name in vars(klass)
    }
    return sorted(
        name
        for name in own
        if name.startswith(("before_", "after_", "on_"))
        and name not in _HOOKS
        and callable(getattr(kind, name))
    )


def _refuse_async(kind: type[Middleware], hook: str) -> None:
    """A hook defined with ``async def`` would only make a coroutine no one awaits: refused."""
    if inspect.iscoroutinefunction(getattr(kind, hook)):
        raise TypeError(
            f"{kind.__qualname__}.{hook} is async def, and Foundry calls hooks synchronously "
            "(it would return a coroutine that never runs); define it with plain def (run "
            "async code inside it with asyncio.run)"
        )


def _named(hook: Callable[..., Any]) -> str:
    """``Class.hook`` of a bound hook, for a log record that says whose hook failed."""
    return str(getattr(hook, "__qualname__", hook))


def _checked_metadata(hook: Callable[..., Any], metadata: object) -> Mapping[str, str]:
    """What an ``on_dispatch`` hook returned, if it is a mapping of strings to strings; else
    ``InvalidJob`` naming the hook, so the middleware at fault is found at once."""
    if isinstance(metadata, Mapping) and all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        return metadata
    raise InvalidJob(
        "metadata",
        f"{_named(hook)} returned {metadata!r:.80}; an on_dispatch "
        "hook returns a dict of str to str (convert numbers with str()), or None",
    )


class Hooks:
    """The bound hooks of every registered middleware, by kind, in registration order.

    Only the hooks a middleware overrides are kept, so a job pays for none it does not use.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, list[Callable[..., Any]]] = {kind: [] for kind in _HOOKS}

    def use(self, middleware: Middleware) -> None:
        """Register ``middleware``'s overridden hooks after those registered before."""
        if not isinstance(middleware, Middleware):
            raise TypeError(
                f"registry.use takes a foundry.Middleware instance, got {middleware!r:.80}; "
                "subclass Middleware and override the hooks you need"
            )
        overridden = [
            kind
            for kind in _HOOKS
            if getattr(type(middleware), kind) is not getattr(Middleware, kind)
        ]
        for kind in overridden:
            _refuse_async(type(middleware), kind)
        for kind in overridden:
            self._by_kind[kind].append(getattr(middleware, kind))
        strays = _stray_hooks(type(middleware))
        if strays:
            log.warning(
                "middleware %s defines %s, which Foundry never calls (a misspelt hook? the "
                "hooks: %s)",
                type(middleware).__qualname__,
                ", ".join(strays),
                ", ".join(_HOOKS),
            )

    def dispatching(self, job: Job) -> Job:
        """``job`` with the metadata the ``on_dispatch`` hooks add."""
        hooks = self._by_kind["on_dispatch"]
        if not hooks:
            return job
        added: dict[str, str] = {}
        for hook in hooks:
            metadata = hook(job)
            if metadata is not None:
                added.update(_checked_metadata(hook, metadata))
        if not added:
            return job
        return attrs.evolve(job, metadata={**job.metadata, **added})

    def process_started(self) -> None:
        """Run the ``after_fork`` hooks (a pool child, set up)."""
        self._each("after_fork")

    def process_stopping(self) -> None:
        """Run the ``before_exit`` hooks (a pool child, stopping cleanly)."""
        self._each("before_exit")

    def run_job(self, job: JobContext, handler: Callable[[], Any]) -> Any:
        """``handler()`` wrapped in the job hooks; its result, or the attempt's exception."""
        befores, afters = self._by_kind["before_job"], self._by_kind["after_job"]
        if not befores and not afters and not self._by_kind["on_error"]:
            return handler()
        try:
            for hook in befores:
                hook(job)
            outcome = JobOutcome(result=handler())
        except BaseException as error:  # what a handler may raise: SystemExit too
            outcome = JobOutcome(error=self._errored(job, error))
        for hook in reversed(afters):
            try:
                hook(job, outcome)
            except BaseException as error:
                outcome = JobOutcome(error=error)
        if outcome.error is not None:
            raise outcome.error
        return outcome.result

    def _errored(self, job: JobContext, error: BaseException) -> BaseException:
        for hook in self._by_kind["on_error"]:
            try:
                hook(job, error)
            except BaseException as replaced:
                error = replaced
        return error

    def _each(self, kind: str) -> None:
        for hook in self._by_kind[kind]:
            try:
                hook()
            except Exception:
                log.exception("middleware hook %s failed; the process carries on", _named(hook))

    def observer(self, extra: PoolObserver | None = None) -> Observers:
        """The parent's events for these middlewares and ``extra`` (a ``PoolObserver``)."""
        return Observers(self._by_kind, extra)


class Observers:
    """Every parent-side listener of a pool, each called in turn; one that raises is logged
    and the others are still told."""

    def __init__(
        self, by_kind: dict[str, list[Callable[..., Any]]], extra: PoolObserver | None
    ) -> None:
        listeners = [extra] if extra is not None else []
        self._by_kind = {
            kind: [*by_kind[kind], *(getattr(x, kind) for x in listeners)]
            for kind in ("job_started", "job_finished", "child_recycled", "leases_renewed")
        }

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """``lease``'s job was handed to child ``child_pid``."""
        self._tell("job_started", lease, child_pid, started_at)

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """``lease``'s attempt ended with ``outcome``."""
        self._tell("job_finished", lease, outcome, runtime_s)

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Child ``child_pid`` is replaced for reaching a limit."""
        self._tell("child_recycled", child_pid, reason)

    def leases_renewed(self, kept: int, lost: int) -> None:
        """A batched renew kept ``kept`` leases and lost ``lost``."""
        self._tell("leases_renewed", kept, lost)

    def _tell(self, kind: str, *event: Any) -> None:
        for listener in self._by_kind[kind]:
            try:
                listener(*event)
            except Exception:
                log.exception("%s failed (a pool event); ignored", _named(listener))
