"""Jobs as dispatchers build them: the registry's defaults, the call's options, the clock.

Shared by ``Dispatcher`` and ``AsyncDispatcher``, so both build the same job from the same call.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from foundry.application.limiting import limit_of
from foundry.application.registry import JobRegistry
from foundry.domain import (
    ConfigurationError,
    InvalidJob,
    Job,
    Rate,
    RunAfter,
    RunAt,
    RunNow,
    UniqueSpec,
)
from foundry.domain.durations import duration
from foundry.domain.schedule import Schedule
from foundry.ports import Clock, CommitHooks, Duplicate, EnqueueOutcome

log = logging.getLogger(__name__)

Target = str | Callable[..., Any]
#: The ``Job`` fields ``dispatch`` takes as options, in its order; and none of them given.
_OPTIONS = ("queue", "priority", "id", "unique", "after", "after_failure")
_NO_OPTIONS = (None,) * len(_OPTIONS)
#: None of ``dispatch``'s schedule and limit options given.
_NO_TIMING = (None,) * 5
#: ``dispatch``'s options that set a limit's parts.
_LIMIT_PARTS = ("rate_limit", "concurrency", "limit_key")
#: ``dispatch``'s options that are not ``Job`` fields (``build`` takes both).
_DISPATCH_ONLY = frozenset({"job_id", "delay", "at", *_LIMIT_PARTS})
#: The ``Job`` fields ``build`` takes as options.
_JOB_FIELDS = frozenset(field.name for field in attrs.fields(Job))
#: One item of ``dispatch_many``: a handler (name or function) and its payload.
Item = tuple[Target, Mapping[str, Any] | None]


class JobMaker:
    """Builds jobs for ``registry``'s handlers, stamped with ``clock``'s time."""

    def __init__(self, registry: JobRegistry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    def one(
        self,
        target: Target,
        payload: Mapping[str, Any] | None,
        *,
        delay: timedelta | float | None,
        at: datetime | None,
        queue: str | None,
        priority: int | None,
        job_id: str | None,
        unique: UniqueSpec | None,
        after: Sequence[str] | None = None,
        after_failure: str | None = None,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        limit_key: str | None = None,
    ) -> Job:
        """The job of one ``dispatch`` call (raises ``InvalidJob`` / ``UnknownHandler``); the
        limit parts given replace the handler's."""
        given = (queue, priority, job_id, unique, after, after_failure)
        if given == _NO_OPTIONS and (delay, at, rate_limit, concurrency, limit_key) == _NO_TIMING:
            return self.plain(target, payload)
        name = self._registry.name_of(target)
        # Only the options given become overrides: a plain dispatch(handler, payload), the
        # common call, builds no dict of Nones to filter (a third of building a job).
        overrides: dict[str, Any] = {}
        if delay is not None or at is not None:
            overrides["schedule"] = _schedule(delay, at)
        if rate_limit is not None or concurrency is not None or limit_key is not None:
            overrides["limit"] = limit_of(
                name,
                self._registry.get(name).template.limit,
                rate_limit=rate_limit,
                concurrency=concurrency,
                limit_key=limit_key,
            )
        if given != _NO_OPTIONS:
            for key, value in zip(_OPTIONS, given, strict=True):
                if value is not None:
                    overrides[key] = value
        overrides["created_at"] = self._clock.now()
        job = self._registry.make_job(name, payload, **overrides)
        return self._registry.hooks.dispatching(job)

    def plain(self, target: Target, payload: Mapping[str, Any] | None) -> Job:
        """``one`` without options: the handler's template with a fresh id, payload and time
        (a dispatcher whose call gave none calls this, without ``one``'s keywords).

        A payload other than a dict or ``None``, or a template whose unique or limit key is
        filled from the payload, takes the registry's general path.
        """
        name = target if type(target) is str else self._registry.name_of(target)
        handler = self._registry.get(name)
        template = handler.template
        unique, limit = template.unique, template.limit
        if type(payload) is dict:
            data = payload.copy()
        elif payload is None:
            data = {}
        else:
            data = None
        if (
            data is None
            or (unique is not None and "{" in unique.key)
            or (limit is not None and "{" in limit.key)
        ):
            job = self._registry.make_job(name, payload, created_at=self._clock.now())
            return self._registry.hooks.dispatching(job)
        handler.arguments.check(name, data)
        job = Job.of_template(template, None, data, self._clock.now(), dict(template.metadata))
        return self._registry.hooks.dispatching(job)

    def many(self, items: Iterable[Item]) -> list[Job]:
        """The jobs of one ``dispatch_many`` call, all stamped with one reading of the clock,
        with the metadata the registry's ``on_dispatch`` hooks add."""
        named = [self._named(item) for item in items]
        made = self._registry.make_jobs(named, created_at=self._clock.now())
        return [self._registry.hooks.dispatching(job) for job in made]

    def build(
        self, target: Target, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> Job:
        """The job ``dispatch`` would enqueue, given ``dispatch``'s options (``job_id=``,
        ``delay=``, ``at=``, ``rate_limit=``...) or ``Job`` fields (``id=``, ``timeout=``...);
        options left ``None`` keep the defaults. It carries the metadata the registry's
        ``on_dispatch`` hooks add. An unknown option is a ``TypeError`` naming them."""
        name = self._registry.name_of(target)
        given = {key: value for key, value in options.items() if value is not None}
        overrides = self._fields(name, given)
        overrides.setdefault("created_at", self._clock.now())
        job = self._registry.make_job(name, payload, **overrides)
        return self._registry.hooks.dispatching(job)

    def _fields(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """``Job`` fields from ``options``: dispatch's own (``job_id``, ``delay``, ``at``, the
        limit parts) turned into the fields they set, the others checked to be fields."""
        unknown = sorted(set(options) - _JOB_FIELDS - _DISPATCH_ONLY)
        if unknown:
            raise TypeError(
                f"build() got unknown option(s) {', '.join(unknown)}: it takes dispatch's "
                "(queue=, delay=, at=, priority=, job_id=, unique=, after=, after_failure=, "
                "rate_limit=, concurrency=, limit_key=) or Job's fields"
            )
        if "job_id" in options:
            options["id"] = options.pop("job_id")
        if "delay" in options or "at" in options:
            options["schedule"] = _schedule(options.pop("delay", None), options.pop("at", None))
        parts = {key: options.pop(key) for key in _LIMIT_PARTS if key in options}
        if parts:
            options["limit"] = limit_of(name, self._registry.get(name).template.limit, **parts)
        return options

    def _named(self, item: object) -> tuple[str, Mapping[str, Any] | None]:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidJob(
                "items",
                f"dispatch_many takes (handler, payload) pairs, got {item!r:.80}; "
                "write dispatch_many([(send_welcome, {'user_id': 1}), ...])",
            )
        target, payload = item
        return self._registry.name_of(target), payload


class FirstDispatchWarning:
    """Logs ``warning`` (formatted with the job id) at the first dispatch, then never again."""

    def __init__(self, warning: str | None) -> None:
        #: The warning still to log (``None`` once logged, or if there is none).
        self.warning = warning

    def dispatched(self, job_id: str) -> None:
        """A job was dispatched: warn if this is the first. An app that configured no logging
        (``foundry``'s records then go nowhere) gets it on stderr, as a ``RuntimeWarning``:
        a job that will vanish must not vanish unsaid."""
        if self.warning is not None:
            message = self.warning.format(job_id=job_id)
            log.warning(message)
            _said_even_unlogged(message, stacklevel=5)
            self.warning = None


def log_unsent(jobs: Sequence[Job], why: str = "", error: BaseException | None = None) -> None:
    """Jobs dispatched after commit were not sent (the commit stands): every id is logged,
    ``why`` and the ``error`` with them, and said on stderr where no logging is set up."""
    because = f": {why}" if why else ""
    ids = ", ".join(job.id for job in jobs)
    message = (
        f"{len(jobs)} job(s) dispatched after commit were not sent, the commit stands{because}; "
        f"not sent: {ids}"
    )
    log.error(message, exc_info=error)
    _said_even_unlogged(message, stacklevel=3)


def _said_even_unlogged(message: str, *, stacklevel: int) -> None:
    """A record about jobs gone (or about to be) is also a ``RuntimeWarning`` when no handler
    would write it (``foundry``'s ``NullHandler`` drops it where the app set up no logging):
    such jobs must not vanish unsaid."""
    if not _emitted(log):
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)


def _emitted(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` at WARNING reaches a handler that writes it somewhere:
    one other than a ``NullHandler`` (the one ``foundry`` installs) on its way up."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(handler, logging.NullHandler) for handler in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


class AfterCommit:
    """Whether a dispatch waits for the current transaction to commit, and the handing over.

    ``default`` is the registry's; ``hooks`` the ``CommitHooks`` of the app's database, if any.
    """

    def __init__(self, hooks: CommitHooks | None, default: bool) -> None:
        self._hooks = hooks
        #: The registry's choice, for a call that makes none.
        self.default = default

    def wanted(self, after_commit: bool | None) -> bool:
        """The call's choice, or the registry's default when the call made none."""
        return self.default if after_commit is None else after_commit

    def defer(self, jobs: list[Job], send: Callable[[], object]) -> None:
        """Call ``send`` after the commit; raises ``ConfigurationError`` without hooks.

        A send that fails at the commit is logged with its job ids and raises no further: the
        commit stands, and the sends deferred after it (which the framework would skip once
        one callback raised) are still made. Outside a transaction the hooks send at once, and
        a failure raises to the dispatch's caller, as any dispatch's does.
        """
        if self._hooks is None:
            raise ConfigurationError(
                "dispatch after commit needs the database's commit hooks: build the "
                "dispatcher with commit_hooks=DjangoCommitHooks() or "
                "SqlAlchemyCommitHooks(session), or dispatch with after_commit=False"
            )
        registering = [True]  # the hooks call at once outside a transaction
        self._hooks.on_commit(lambda: _logged(jobs, send, raises=registering[0]))
        registering[0] = False


def _logged(jobs: list[Job], send: Callable[[], object], *, raises: bool) -> None:
    try:
        send()
    except Exception as error:
        if raises:
            raise
        log_unsent(jobs, error=error)


def job_id_of(outcome: EnqueueOutcome) -> str:
    """The id a dispatcher returns: the job's, or for a duplicate the pending job's."""
    return outcome.existing_id if isinstance(outcome, Duplicate) else outcome.job_id


def _schedule(delay: timedelta | float | None, at: datetime | None) -> Schedule:
    if delay is not None and at is not None:
        raise InvalidJob("schedule", "give delay= or at=, not both")
    if delay is not None:
        return _run_after(delay)
    if at is None:
        return RunNow()
    if not isinstance(at, datetime):
        raise InvalidJob("schedule", f"at={at!r} must be an aware datetime")
    try:
        return RunAt(at)
    except InvalidJob:
        raise  # names the field and the fix already (a pytz zone, a moment beyond reach)
    except ValueError as error:
        raise InvalidJob("schedule", f"{error}; pass an aware datetime") from error


def _run_after(delay: object) -> RunAfter:
    given = duration(delay)
    if given is None:
        raise InvalidJob(
            "schedule",
            f"delay={delay!r} must be a timedelta or a number of seconds, e.g. delay=30 or "
            "delay=timedelta(minutes=5) (at= takes a datetime)",
        )
    try:
        return RunAfter(given)
    except ValueError as error:
        raise InvalidJob("schedule", f"{error}; pass a timedelta >= 0 or seconds") from error
