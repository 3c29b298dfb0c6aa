"""Handlers by name: plain functions taking a job's payload as keyword arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, Unpack, overload

import attrs

from foundry.application.hooks import Hooks
from foundry.application.limiting import fill_key, filled, key_fields, limit_of
from foundry.application.middleware import Middleware
from foundry.application.schedules.registered import ScheduleBook, ScheduleOptions, unknown_handler
from foundry.domain import (
    DEFAULT_QUEUE,
    ConfigurationError,
    InvalidJob,
    Job,
    Rate,
    RetryPolicy,
    UniqueSpec,
    UnknownHandler,
    new_job_id,
)
from foundry.domain.durations import as_duration
from foundry.domain.job import DEFAULT_TIMEOUT, new_job_ids

if TYPE_CHECKING:
    from foundry.domain import PeriodicSchedule

F = TypeVar("F", bound=Callable[..., Any])


#: Fields every job gets fresh rather than from its handler's template.
_FRESH = frozenset({"id", "payload", "metadata"})


def _defaults(handler: Handler) -> Mapping[str, Any]:
    return {
        field.name: getattr(handler.template, field.name)
        for field in attrs.fields(Job)
        if field.name not in _FRESH
    }


class Arguments(NamedTuple):
    """The keyword arguments a handler takes: which it requires and which it accepts.

    ``accepted`` is ``None`` when the function takes ``**kwargs`` (any name goes).
    """

    required: frozenset[str]
    accepted: frozenset[str] | None

    @classmethod
    def of(cls, function: Callable[..., Any], name: str) -> Arguments:
        """Read ``function``'s signature; positional-only parameters cannot take a payload,
        and what cannot be called is no handler."""
        if not callable(function):
            raise ConfigurationError(
                f"handler {name!r} is a {type(function).__name__}, which cannot be called; "
                "register a function"
            )
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: accept anything
            return cls(frozenset(), None)
        kinds = inspect.Parameter
        if any(p.kind is kinds.POSITIONAL_ONLY and p.default is p.empty for p in parameters):
            raise ConfigurationError(
                f"handler {name!r} has positional-only parameters; a job's payload arrives as "
                "keyword arguments, so take them as ordinary parameters"
            )
        named = [
            p for p in parameters if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        ]
        return cls(
            required=frozenset(p.name for p in named if p.default is p.empty),
            accepted=None
            if any(p.kind is kinds.VAR_KEYWORD for p in parameters)
            else frozenset(p.name for p in named),
        )

    def check(self, handler: str, payload: Mapping[str, Any]) -> None:
        """Raise ``InvalidJob`` naming the argument when ``payload`` cannot be passed."""
        if not payload and not self.required:  # a dispatch without arguments
            return
        keys = payload.keys()
        if self.required <= keys and (self.accepted is None or keys <= self.accepted):
            return
        if self.accepted is not None:
            unknown = set(keys).difference(self.accepted)
            if unknown:
                raise InvalidJob(
                    "payload",
                    f"handler {handler!r} takes no argument {sorted(unknown)[0]!r}; it takes "
                    f"{sorted(self.accepted) or 'none'}: remove the key or rename it",
                )
        missing = self.required.difference(payload)
        if missing:
            raise InvalidJob(
                "payload",
                f"handler {handler!r} requires the argument {sorted(missing)[0]!r}, which the "
                f"payload lacks; add it to the payload dict",
            )


# Equal only to itself: nothing compares handlers, so attrs need not compile __eq__ at import.
@attrs.frozen(eq=False)
class Handler:
    """A registered function and the defaults every job for it starts from.

    ``defaults`` holds the template's fields (all but id, payload and metadata) as ``Job``
    keyword arguments: a job is built by one ``Job(...)`` call, which validates every field.
    ``arguments`` is what its payload must fit, checked at dispatch. ``is_async``: the function
    is an ``async def`` (a pool child awaits it on its event loop).
    """

    name: str
    function: Callable[..., Any]
    template: Job
    defaults: Mapping[str, Any] = attrs.field(
        init=False, default=attrs.Factory(_defaults, takes_self=True), repr=False
    )
    arguments: Arguments = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: Arguments.of(self.function, self.name), takes_self=True),
        repr=False,
    )
    is_async: bool = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: inspect.iscoroutinefunction(self.function), takes_self=True
        ),
        repr=False,
    )

    def __call__(self, **payload: Any) -> Any:
        """Run the function with ``payload`` as keyword arguments."""
        return self.function(**payload)


def default_name(function: Callable[..., Any]) -> str:
    """``module.qualname`` of ``function``: the name a handler gets unless one is given.
    Raises ``ConfigurationError`` for a callable without one (a ``functools.partial``, an
    object with ``__call__``)."""
    name = _qualified(function)
    if name is None:
        raise ConfigurationError(
            f"{function!r:.100} has no name of its own (a functools.partial or a callable "
            "object, say): register it with @registry.job(name=...)"
        )
    return name


def _qualified(function: Callable[..., Any]) -> str | None:
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}"


def _described(function: Callable[..., Any]) -> str:
    return _qualified(function) or f"{function!r:.100}"


def _registers_again(known: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """Whether ``new`` is ``known`` registered again: the same function, or the same
    module-level one of a module imported again. Lambdas and nested functions share their
    names with others (``<lambda>``, ``<locals>``), so for them only the same object is."""
    if new is known:
        return True
    name = _qualified(new)
    return name is not None and name == _qualified(known) and "<" not in name


class JobRegistry:
    """The handlers a worker can run and a dispatcher can name.

    Register with ``@registry.job`` (or ``@registry.job(name=..., queue=..., ...)``). Defaults
    are validated at registration: a bad queue, priority or timeout raises ``InvalidJob`` then,
    not when the first job is dispatched. ``after_commit=True`` makes every dispatch of its
    handlers wait for the current database transaction to commit unless the call says
    ``after_commit=False`` (see ``Dispatcher``).
    """

    def __init__(self, *, after_commit: bool = False) -> None:
        self.after_commit = after_commit
        self._handlers: dict[str, Handler] = {}
        self._names: dict[Callable[..., Any], str] = {}
        self._schedules = ScheduleBook()
        self.hooks = Hooks()

    def use(self, middleware: Middleware) -> None:
        """Run ``middleware``'s hooks around this registry's jobs (see ``Middleware``), after
        those of middlewares registered before it."""
        self.hooks.use(middleware)

    @overload
    def job(self, name: F, /) -> F: ...

    @overload
    def job(
        self,
        name: str | None = None,
        *,
        queue: str = DEFAULT_QUEUE,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
        soft_timeout: timedelta | float | None = None,
        unique: UniqueSpec | None = None,
        priority: int = 0,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        limit_key: str | None = None,
    ) -> Callable[[F], F]: ...

    def job(
        self,
        name: str | F | None = None,
        *,
        queue: str = DEFAULT_QUEUE,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
        soft_timeout: timedelta | float | None = None,
        unique: UniqueSpec | None = None,
        priority: int = 0,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        limit_key: str | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function as a handler (usable bare or with options).

        ``timeout`` and ``soft_timeout`` are seconds or a ``timedelta``.
        ``unique.key`` may hold ``{field}`` placeholders, filled from each job's payload.
        ``rate_limit`` (``"100/m"``) and ``concurrency`` limit the jobs sharing ``limit_key``
        (default: the handler's name; ``{field}`` placeholders filled from each payload).
        """
        if callable(name):
            return self.job()(name)

        def register(function: F) -> F:
            job_name = name or default_name(function)
            template = Job(
                name=job_name,
                queue=queue,
                retry=retry or RetryPolicy(),
                timeout=DEFAULT_TIMEOUT if timeout is None else as_duration(timeout),
                soft_timeout=as_duration(soft_timeout),
                unique=unique,
                priority=priority,
                limit=limit_of(
                    job_name,
                    None,
                    rate_limit=rate_limit,
                    concurrency=concurrency,
                    limit_key=limit_key,
                ),
            )
            handler = Handler(template.name, function, template)
            _check_key_fields(handler)
            self._check_not_scheduled(function)
            self._add(handler)
            return function

        return register

    def _check_not_scheduled(self, function: Callable[..., Any]) -> None:
        """Refuse options given to a handler a schedule was declared on: the schedule already
        took its name and queue (``@registry.job`` below ``@registry.periodic``)."""
        known = self._names.get(function)
        scheduled = [s.name for s in self._schedules.all() if s.handler == known]
        if known is not None and scheduled:
            raise ConfigurationError(
                f"schedule {scheduled[0]!r} was declared on {known!r} before @registry.job "
                "gave it its options, so it would ignore them; put @registry.periodic(...) "
                "above @registry.job(...)"
            )

    def _add(self, handler: Handler) -> None:
        known = self._handlers.get(handler.name)
        if known is not None and not _registers_again(known.function, handler.function):
            raise ConfigurationError(
                f"two handlers are registered as {handler.name!r} "
                f"({_described(known.function)} and {_described(handler.function)}); "
                "give one of them another name=..."
            )
        self._handlers[handler.name] = handler
        self._names[handler.function] = handler.name

    def periodic(
        self, *, name: str | None = None, **options: Unpack[ScheduleOptions]
    ) -> Callable[[F], F]:
        """Enqueue the decorated handler on a schedule, e.g. ``@registry.periodic(cron="*/5 *
        * * *", tz="Europe/Berlin")``; registers it as a job first if it is not one (so it goes
        above ``@registry.job``). The schedule's name is ``name`` or the handler's; the options
        are ``schedule``'s."""

        def register(function: F) -> F:
            if function not in self._names:
                self.job(function)
            self.schedule(name or self._names[function], function, **options)
            return function

        return register

    def schedule(
        self, name: str, handler: str | Callable[..., Any], **options: Unpack[ScheduleOptions]
    ) -> PeriodicSchedule:
        """Declare the periodic schedule ``name`` of ``handler`` (see ``ScheduleOptions``).

        Raises ``InvalidSchedule`` naming the schedule and the fix for a bad argument.
        """
        try:
            target = self.get(self.name_of(handler))
        except UnknownHandler:
            raise unknown_handler(name, handler) from None
        return self._schedules.add(name, target, options)

    def schedules(self) -> list[PeriodicSchedule]:
        """Every declared periodic schedule, sorted by name."""
        return self._schedules.all()

    def get(self, name: str) -> Handler:
        """The handler registered as ``name``; raises ``UnknownHandler`` if there is none."""
        try:
            return self._handlers[name]
        except KeyError:
            raise UnknownHandler(name, self._handlers) from None

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def names(self) -> list[str]:
        """Every registered handler name, sorted."""
        return sorted(self._handlers)

    def name_of(self, target: str | Callable[..., Any]) -> str:
        """The handler name for a name or a registered function."""
        if isinstance(target, str):
            return target
        try:
            return self._names[target]
        except (KeyError, TypeError):
            raise UnknownHandler(_described(target)) from None

    def make_job(
        self, name: str, payload: Mapping[str, Any] | None = None, **overrides: Any
    ) -> Job:
        """A new job for handler ``name``: its defaults, then ``overrides`` (``Job`` fields).

        Raises ``UnknownHandler`` for an unregistered name and ``InvalidJob`` for bad values.
        """
        job_id = overrides.pop("id") if "id" in overrides else new_job_id()
        return _make(self.get(name), payload, job_id, overrides)

    def make_jobs(
        self, items: Sequence[tuple[str, Mapping[str, Any] | None]], **overrides: Any
    ) -> list[Job]:
        """``make_job`` of each ``(name, payload)`` with the same ``overrides`` (no ``id``);
        the ids come from one read of the random source."""
        if "id" in overrides:
            raise TypeError("make_jobs mints every job's id; use make_job for a given id")
        ids = new_job_ids(len(items))
        return [
            _make(self.get(name), payload, job_id, overrides)
            for (name, payload), job_id in zip(items, ids, strict=True)
        ]


def _make(
    handler: Handler, payload: Mapping[str, Any] | None, job_id: str, overrides: Mapping[str, Any]
) -> Job:
    data = _payload_dict(handler.name, payload)
    handler.arguments.check(handler.name, data)
    fields = {**handler.defaults, **overrides, "id": job_id, "payload": data}
    fields["unique"] = _fill_unique(fields["unique"], data)
    fields["limit"] = filled(fields["limit"], data)
    if handler.template.metadata:
        fields.setdefault("metadata", dict(handler.template.metadata))
    return Job(**fields)


def _payload_dict(handler: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    if type(payload) is dict:
        return payload.copy()
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidJob(
            "payload",
            f"got {type(payload).__name__} {payload!r:.80} for handler {handler!r}; a payload is "
            "a dict of the handler's keyword arguments, e.g. {'user_id': 5}",
        )
    return dict(payload)


def _check_key_fields(handler: Handler) -> None:
    """Refuse a unique or limit key template that cannot be read (``key_fields`` raises),
    whatever the handler takes, or that names a field the handler takes no argument for
    (every dispatch would be refused); a handler taking ``**kwargs`` accepts any field."""
    unique, limit = handler.template.unique, handler.template.limit
    accepted = handler.arguments.accepted
    for field, template in (
        ("unique", None if unique is None else unique.key),
        ("limit_key", None if limit is None else limit.key),
    ):
        if template is None:
            continue
        unknown = key_fields(template, field) - (accepted or set())
        if accepted is not None and unknown:
            raise InvalidJob(
                field,
                f"{template!r} names {sorted(unknown)[0]!r}, which handler {handler.name!r} "
                f"takes no argument for; name one of {sorted(accepted) or 'none'}",
            )


def _fill_unique(unique: UniqueSpec | None, payload: Mapping[str, Any]) -> UniqueSpec | None:
    if not isinstance(unique, UniqueSpec) or "{" not in unique.key:
        return unique  # not a spec: the job's own check names the fix
    return attrs.evolve(unique, key=fill_key(unique.key, payload, "unique"))
