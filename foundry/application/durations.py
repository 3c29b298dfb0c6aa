"""Durations given as a ``timedelta`` or as seconds, as the public API takes them."""

from __future__ import annotations

import math
from datetime import timedelta


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
