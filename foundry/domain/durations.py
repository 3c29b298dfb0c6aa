"""Durations given as a ``timedelta`` or as seconds, as the public API takes them."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

_ZERO = timedelta(0)


def duration(value: object) -> timedelta | None:
    """``value`` if it is a ``timedelta``, a finite number of seconds as one, else ``None``
    (NaN, infinities, a number past ``timedelta``'s range, a bool, any other type)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return timedelta(seconds=value)
        except OverflowError:
            return None
    return None


def as_duration(value: Any) -> Any:
    """A converter for a duration field: seconds (0 or more) become a ``timedelta``; anything
    else is left as given, for the field's validator to refuse naming it."""
    given = duration(value)
    return value if given is None or given < _ZERO else given


def shown(value: object) -> str:
    """``value`` for an error message: a ``timedelta`` in seconds (``-1 s``, ``0.5 s``), as the
    public API takes durations, rather than its repr; anything else as its repr."""
    if not isinstance(value, timedelta):
        return repr(value)
    seconds = f"{value.total_seconds():.6f}".rstrip("0").rstrip(".")
    return f"{seconds} s"
