"""Logging a queue outage once when it starts and once when it ends, not at every retry; and
whether the held leases were confirmed since the queue last failed."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Outage:
    """Tracks whether the queue backend answers; logs each transition once."""

    def __init__(self, on_failed: Callable[[], None] | None = None) -> None:
        self._since: float | None = None
        self._unconfirmed = False
        self._on_failed = on_failed  # told of each failure, as it is recorded

    @property
    def down(self) -> bool:
        """Whether the last call to the backend failed."""
        return self._since is not None

    @property
    def unconfirmed(self) -> bool:
        """Whether a call failed since a renew last confirmed every held lease.

        A failover may have lost the claims of some: the new master knows nothing of them and
        hands their jobs out again, so those jobs must not start here.
        """
        return self._unconfirmed

    def failed(self, what: str, error: Exception, now: float) -> None:
        """A call failed; logged only if the backend was answering until now."""
        self._unconfirmed = True
        if self._on_failed is not None:
            self._on_failed()
        if self._since is None:
            self._since = now
            log.error(
                "queue unavailable (%s failed: %s); retrying. Running jobs go on until their "
                "leases would lapse, then their children are killed and the jobs left to the "
                "queue's recovery",
                what,
                error,
            )

    def ok(self, now: float) -> None:
        """A call succeeded; logs the recovery if the backend was down."""
        if self._since is not None:
            log.warning("queue reachable again after %.1fs", now - self._since)
            self._since = None

    def confirmed(self) -> None:
        """A renew of every held lease was answered: the queue holds those it did not lose."""
        self._unconfirmed = False
