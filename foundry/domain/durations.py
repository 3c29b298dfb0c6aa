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


_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000))


def spoken(value: timedelta) -> str:
    """``value`` as people and log readers write it: ``30s``, ``1.5s``, ``250ms``, ``2m``,
    ``1h30m``, ``2d3h``; whole units down to the minute, then seconds with their fraction."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    if micros < 1_000_000:
        return f"{sign}{_decimal(micros, 1000)}ms" if micros else "0s"
    parts = []
    for unit, size in _UNITS:
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        parts.append(f"{_decimal(micros, 1_000_000)}s")
    return sign + "".join(parts)


def _decimal(micros: int, per_unit: int) -> str:
    whole, rest = divmod(micros, per_unit)
    digits = len(str(per_unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0").rstrip(".")
