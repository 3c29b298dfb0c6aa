"""Owner-token locks, over whatever a cache adapter stores.

Every adapter provides the few primitives in ``LockBackend`` (atomic there); waiting is the
same everywhere: poll with a short, growing, jittered pause, measured against the cache's
clock, so a test with a manual clock decides when a wait runs out. Single-flight ``remember``
is built on them in ``cache_remember.py``.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self, TypeVar

from foundry.adapters.cache_support import positive_ms, ttl_ms, validate_key
from foundry.domain import CacheError, InvalidCacheValue, LockNotOwned
from foundry.ports.cache import Ttl

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.02


class LockBackend(Protocol):
    """Atomic lock primitives over one storage key; expiry is exact against the cache clock."""

    def lock_acquire(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Take the lock if it is free, expired, or already ``token``'s (then refresh it)."""
        ...

    def lock_release(self, skey: str, token: str) -> bool:
        """Drop the lock if ``token`` holds it; whether it did."""
        ...

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` from now if ``token`` holds it; whether it did."""
        ...

    def lock_force_release(self, skey: str) -> None:
        """Drop the lock whoever holds it."""
        ...

    def lock_holder(self, skey: str) -> str | None:
        """The token holding the lock now, if any."""
        ...

    def wait_now_ms(self) -> int:
        """Now, in ms, on the clock waits are measured against."""
        ...


def poll(
    attempt: Callable[[], T | None], now_ms: Callable[[], int], limit_ms: int | None
) -> T | None:
    """Call ``attempt`` until it returns something, or ``limit_ms`` pass on the clock.

    The last attempt runs at (or after) the deadline, so something that becomes possible
    exactly then is still taken.
    """
    deadline = None if limit_ms is None else now_ms() + limit_ms
    pause = _FIRST_PAUSE
    while True:
        result = attempt()
        if result is not None:
            return result
        if deadline is not None and now_ms() >= deadline:
            return None
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, _MAX_PAUSE)


class CacheLock:
    """A lock named ``name``: owner token, expiry after ``ttl``, safe release and extend.

    Each thread using the object is an owner of its own (its own token, as redis-py's locks
    do), so one lock object shared by a threaded server's threads excludes them from each
    other; a lock is released by the thread that took it. A restored lock (``restored``) has
    one given token instead, its owner's in every thread; without a ``ttl`` it cannot be
    acquired.
    """

    def __init__(
        self,
        backend: LockBackend,
        name: str,
        skey: str,
        ttl: int | None,
        timeout: int | None,
        *,
        owner: str | None = None,
    ) -> None:
        self._backend = backend
        self._name = name
        self._skey = skey
        self._ttl = ttl
        self._timeout = timeout
        self._given = owner
        self._owner = threading.local()

    @property
    def _token(self) -> str:
        """This thread's owner token (the given one, on a restored lock)."""
        if self._given is not None:
            return self._given
        token: str | None = getattr(self._owner, "token", None)
        if token is None:
            token = self._owner.token = secrets.token_hex(16)
        return token

    @property
    def owner(self) -> str:
        """This owner's token: give it to ``restore_lock`` to release the lock elsewhere."""
        return self._token

    @property
    def name(self) -> str:
        """The lock's name within the cache namespace."""
        return self._name

    def acquire(self, *, blocking: bool = True, timeout: Ttl = None) -> bool:
        """Take the lock; with ``blocking``, wait up to ``timeout``, or the lock's own
        timeout when it is ``None`` (forever if that is ``None`` too).

        ``blocking=False`` tries once and takes no timeout (``InvalidCacheValue``).
        """
        if not blocking:
            if timeout is not None:
                raise InvalidCacheValue(
                    f"acquire(blocking=False) tries once and cannot wait {timeout!r}; "
                    "drop blocking=False to wait up to the timeout"
                )
            return self._try()
        limit = self._timeout if timeout is None else ttl_ms(timeout, "lock timeout")
        return bool(poll(lambda: self._try() or None, self._backend.wait_now_ms, limit))

    def _try(self) -> bool:
        if self._ttl is None:
            raise InvalidCacheValue(
                f"lock {self._name!r} was restored without a ttl, so it cannot be acquired; "
                "pass one: restore_lock(name, owner, ttl)"
            )
        return self._backend.lock_acquire(self._skey, self._token, self._ttl)

    def release(self) -> None:
        """Give the lock up; ``LockNotOwned`` if it expired or someone else holds it."""
        if not self._backend.lock_release(self._skey, self._token):
            raise LockNotOwned(f"lock {self._name!r} is not held by this owner (expired?)")

    def force_release(self) -> None:
        """Give the lock up whoever holds it (nothing if it is free)."""
        self._backend.lock_force_release(self._skey)

    def extend(self, ttl: Ttl) -> None:
        """Hold the lock for ``ttl`` from now; ``LockNotOwned`` if it is not held.

        ``ttl`` must be positive (``InvalidCacheValue``): to give the lock up, ``release``.
        """
        ms = positive_ms(ttl, "lock ttl")
        if not self._backend.lock_extend(self._skey, self._token, ms):
            raise LockNotOwned(f"cannot extend lock {self._name!r}: this owner does not hold it")

    def owned(self) -> bool:
        """Whether this owner holds the lock now."""
        return self._backend.lock_holder(self._skey) == self._token

    def __enter__(self) -> Self:
        if not self.acquire(blocking=True):
            limit = None if self._timeout is None else self._timeout / 1000
            raise CacheError(f"timed out after {limit} s waiting for lock {self._name!r}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.release()
            return
        try:
            self.release()
        except LockNotOwned:
            log.warning("lock %s expired while its block was failing", self._name)


def make_lock(backend: LockBackend, name: str, skey: str, ttl: Ttl, timeout: Ttl) -> CacheLock:
    """A ``CacheLock`` with validated durations (``name`` is validated by the caller)."""
    return CacheLock(
        backend, name, skey, positive_ms(ttl, "lock ttl"), ttl_ms(timeout, "lock timeout")
    )


def restore_lock(
    backend: LockBackend, name: str, skey: str, *, owner: str, ttl: Ttl, timeout: Ttl
) -> CacheLock:
    """The lock ``name`` as held by ``owner`` (``name`` is validated by the caller); ``ttl``
    is ``None`` (it cannot be acquired) or positive."""
    token = validate_key(owner, "lock owner")
    ms = None if ttl is None else positive_ms(ttl, "lock ttl")
    return CacheLock(backend, name, skey, ms, ttl_ms(timeout, "lock timeout"), owner=token)
