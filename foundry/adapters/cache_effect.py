"""Effect records for ``CachePort.idempotent``, over one atomic step each adapter provides.

A record is ``"P:<fence>"`` (an attempt is acting) or ``"D:<fence>"`` (done). ``decide`` is
the rule, and the Redis function ``cache_effect`` is the same rule in Lua.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from foundry.adapters.cache_support import MAX_COUNTER, positive_ms
from foundry.domain import CacheError, InvalidCacheValue, StaleEffect
from foundry.ports.cache import Ttl

#: ``decide``'s answer when the record is to be deleted.
DELETE = ""


class EffectBackend(Protocol):
    """One atomic read-decide-write of an effect record, expiring ``ttl_ms`` after it."""

    def effect_step(self, skey: str, op: str, fence: int, ttl_ms: int) -> str:
        """Apply ``decide`` to the record at ``skey``; its reply."""
        ...


def decide(record: str | None, op: str, fence: int) -> tuple[str, str | None]:
    """The reply of ``op`` ("begin", "finish" or "abort") by ``fence`` on ``record``, and
    the record to store (``None``: unchanged, ``DELETE``: remove).

    begin: "done" if done; "stale" if a greater fence is pending; else "run", pending ours.
    finish: "ok", done ours, unless a greater fence is pending ("stale").
    abort: "ok", our pending mark removed (another's kept).
    """
    kind, held = (record[0], int(record[2:])) if record else ("", -1)
    if op == "abort":
        return "ok", DELETE if kind == "P" and held == fence else None
    if kind == "D":
        return "done" if op == "begin" else "ok", None
    if kind == "P" and held > fence:
        return "stale", None
    return ("run", f"P:{fence}") if op == "begin" else ("ok", f"D:{fence}")


def step_in(
    records: dict[str, tuple[str, int]], skey: str, op: str, fence: int, *, ttl_ms: int, now: int
) -> str:
    """``decide`` over an in-process map of ``skey -> (record, expiry ms)``; the reply."""
    held = records.get(skey)
    reply, record = decide(held[0] if held and held[1] > now else None, op, fence)
    if record == DELETE:
        records.pop(skey, None)
    elif record is not None:
        records[skey] = (record, now + ttl_ms)
    return reply


def _valid_fence(fence: object) -> int:
    """``fence`` if it is a fencing token: an int from 0 to ``MAX_COUNTER`` (Lua compares
    fences as doubles, exact only that far)."""
    if isinstance(fence, bool) or not isinstance(fence, int) or not 0 <= fence <= MAX_COUNTER:
        raise InvalidCacheValue(
            f"an effect's fence must be an int from 0 to {MAX_COUNTER}, got {fence!r}; "
            "pass current_job().fence, or 0 outside a job"
        )
    return fence


class CacheEffect:
    """An ``Effect`` over an adapter's ``effect_step``."""

    def __init__(self, backend: EffectBackend, key: str, skey: str, ttl: Ttl, fence: int):
        self._backend = backend
        self._key = key
        self._skey = skey
        self._ttl_ms = positive_ms(ttl, "ttl")
        self._fence = _valid_fence(fence)
        self._done: bool | None = None  # None until the block is entered

    @property
    def done(self) -> bool:
        """Whether the effect was already recorded when the block was entered.

        Raises ``CacheError`` before the block is entered: the record has not been read.
        """
        if self._done is None:
            raise CacheError(
                f"effect {self._key!r} has not been read: use it as a block, "
                "with cache.idempotent(...) as effect: if not effect.done: ..."
            )
        return self._done

    def __enter__(self) -> Self:
        reply = self._step("begin")
        self._done = reply == "done"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._done is not False:  # done already, or never entered: nothing to record
            return
        self._step("abort" if exc is not None else "finish")

    def _step(self, op: str) -> str:
        reply = self._backend.effect_step(self._skey, op, self._fence, self._ttl_ms)
        if reply == "stale":
            raise StaleEffect(self._key, self._fence)
        return reply
