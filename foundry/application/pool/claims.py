"""Claim tokens the pool sends, so a claim whose reply was lost is re-sent, not repeated.

A claim can be applied by the backend while its reply never arrives (Redis dies after writing
its AOF, a connection resets). Claiming again with a fresh token would leave those jobs leased
to nobody until their leases expire, each with an attempt spent and never started. Re-sending
the lost claim's token returns the leases it still holds instead (Q8).
"""

from __future__ import annotations

import secrets


class ClaimTokens:
    """The token for the next claim: the unanswered one while it may still be held, else new.

    Times are the caller's monotonic seconds. ``sent_at`` of a re-sent claim is the first
    send's, so lease deadlines computed from it are never later than the server's.
    """

    def __init__(self, lease_s: float) -> None:
        self._lease_s = lease_s
        self._unanswered: tuple[str, float] | None = None

    def next(self, now: float) -> tuple[str, float]:
        """The token to send now and when its claim was first sent."""
        if self._unanswered is not None:
            token, sent_at = self._unanswered
            if now - sent_at < self._lease_s:
                return token, sent_at
        return secrets.token_urlsafe(12), now

    def answered(self) -> None:
        """The claim got its reply: the next claim is a new one."""
        self._unanswered = None

    def unanswered(self, token: str, sent_at: float) -> None:
        """The claim failed (maybe applied, reply lost): send ``token`` again next time."""
        self._unanswered = (token, sent_at)
