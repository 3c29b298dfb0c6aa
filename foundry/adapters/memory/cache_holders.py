"""The lock holders and effect records of one memory cache namespace (never evicted)."""

from __future__ import annotations

from foundry.adapters.cache_effect import step_in


class Holders:
    """Storage key -> (holder, expiry ms): a lock's owner token, or an effect record. Not
    locked; an expired one is as good as absent, and dropped by ``sweep``."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, int]] = {}

    def holder(self, skey: str, now: int) -> str | None:
        """The holder of ``skey`` unless it expired."""
        held = self._held.get(skey)
        if held is None or held[1] <= now:
            return None
        return held[0]

    def hold(self, skey: str, holder: str, until: int) -> None:
        """``holder`` holds ``skey`` until ``until`` (ms)."""
        self._held[skey] = (holder, until)

    def drop(self, skey: str) -> None:
        """Whoever holds ``skey`` holds it no more."""
        self._held.pop(skey, None)

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int, now: int) -> str:
        """One step of ``cache_effect.decide`` on the record at ``skey``; its reply."""
        return step_in(self._held, skey, op, fence, ttl_ms=ttl_ms, now=now)

    def sweep(self, now: int) -> None:
        """Drop every expired one."""
        for skey in [k for k, (_, at) in self._held.items() if at <= now]:
            del self._held[skey]
