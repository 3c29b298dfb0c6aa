"""``ErrorInfo``: the record one failed attempt leaves in a job's error history.

A plain value, kept with the job and shown in dead letters; the exceptions Foundry raises are
in ``errors.py`` (whose module path those histories name, so it stays where it is).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from foundry.domain.text import cut_head, cut_tail, storable

#: Foundry's own error classes as error histories written before the ``foundry`` package
#: name them (``domain.errors.PermanentFailure``), each with the name it has now.
_FORMER_NAMES = {
    f"{module}.{name}": f"foundry.{module}.{name}"
    for module, names in {
        "domain.errors": (
            "FoundryError InvalidJob InvalidQueueName UndecodableJob StaleLease JobNotFound "
            "QueueUnavailable CacheError InvalidCacheKey InvalidCacheValue UndecodableValue "
            "CacheUnavailable LockNotOwned ConfigurationError PermanentFailure UnknownHandler"
        ),
        "application.errors": "SoftTimeLimitExceeded TimeLimitExceeded WorkerLost",
    }.items()
    for name in names.split()
}


#: The most characters of an exception's message an attempt keeps (the start of it).
MAX_MESSAGE = 8_192
#: The most characters of a traceback an attempt keeps (the end of it: the raising frames).
MAX_TRACEBACK = 32_768


def _as_tuple(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(storable(name) for name in names)


def _message(text: str) -> str:
    return cut_tail(storable(text), MAX_MESSAGE)


def _traceback(text: str) -> str:
    return cut_head(storable(text), MAX_TRACEBACK)


@attrs.frozen
class ErrorInfo:
    """One failed attempt, as recorded in a job's error history.

    ``type`` is the qualified name of the exception class and ``mro`` the qualified names of
    its bases, so a retry policy can match a class and its subclasses across processes.
    ``signal`` / ``exit_code`` are set when the worker process itself died. Text is kept as
    every backend can store it (lone surrogates escaped), the message's first
    ``MAX_MESSAGE`` characters and the traceback's last ``MAX_TRACEBACK``.
    """

    type: str = attrs.field(converter=storable, validator=attrs.validators.min_len(1))
    message: str = attrs.field(default="", converter=_message)
    traceback: str = attrs.field(default="", converter=_traceback)
    attempt: int = 0
    at: datetime | None = None
    worker: str = attrs.field(default="", converter=storable)
    signal: int | None = None
    exit_code: int | None = None
    mro: tuple[str, ...] = attrs.field(default=(), converter=_as_tuple)

    def is_a(self, names: frozenset[str]) -> bool:
        """Whether this error's class, or a base of it, is named in ``names``.

        A name matches either the qualified name (``pkg.mod.Error``) or the bare class name.
        Foundry's own classes match by their current name in histories stored before they
        moved into the ``foundry`` package.
        """
        for qualified in (self.type, *self.mro):
            current = _FORMER_NAMES.get(qualified, qualified)
            if {qualified, current, current.rpartition(".")[2]} & names:
                return True
        return False

    @classmethod
    def from_exception(
        cls, error: BaseException, *, traceback: str = "", attempt: int = 0, worker: str = ""
    ) -> ErrorInfo:
        """Describe an exception without keeping a reference to it (it may not pickle)."""
        mro = tuple(_qualname(klass) for klass in type(error).__mro__[1:] if klass is not object)
        return cls(
            type=_qualname(type(error)),
            message=_safe_str(error),
            traceback=traceback,
            attempt=attempt,
            worker=worker,
            mro=mro,
        )


def _qualname(klass: type) -> str:
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except BaseException as failure:  # a broken __str__ must not hide the original failure
        return f"<unprintable {type(error).__name__}: {type(failure).__name__}>"
