"""Where time comes from, so tests move it instead of sleeping."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """The current wall-clock time.

    * ``now`` returns a timezone-aware UTC datetime and never goes backwards within one clock.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...
