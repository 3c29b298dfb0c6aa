"""The cache port: values by key, with expiry, counters, tags, locks and statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, runtime_checkable

from foundry.domain.exports import lazy_exports

if TYPE_CHECKING:  # re-exported: the ``as`` marks it public for the type checker
    from foundry.ports.cache_types import CacheStats as CacheStats  # noqa: PLC0414

# Loaded at first use: a worker's container names the port, and never reads statistics.
_LATER = {"CacheStats": "foundry.ports.cache_types"}
__getattr__, __dir__ = lazy_exports(__name__, _LATER, _LATER)

T = TypeVar("T")

#: A time to live: a timedelta, or seconds; ``None`` means forever.
Ttl = timedelta | float | int | None


@runtime_checkable
class Lock(Protocol):
    """A named lock with an owner token and an expiry, so a dead owner cannot hold it forever.

    * Only the owner (this object, in the thread that took it) can ``release`` or ``extend``;
      others get ``LockNotOwned``. Threads sharing one lock object exclude each other.
    * The owner is a token (``owner``): another process that knows it restores the lock
      (``CachePort.restore_lock``) and releases it there, as a queued job finishing what a web
      request locked. ``force_release`` frees the lock whoever holds it.
    * Usable as a context manager: blocks until acquired (or raises ``CacheError`` on timeout);
      leaving the block releases it, and raises ``LockNotOwned`` if the lock expired inside a
      block that otherwise succeeded (its work was not exclusive: extend, or use a longer ttl).
    """

    @property
    def name(self) -> str:
        """The lock's name within the cache namespace."""
        ...

    @property
    def owner(self) -> str:
        """This owner's token: this thread's, on a lock made by ``lock`` (each thread is an
        owner of its own), the given one on a restored lock (the same in every thread)."""
        ...

    def acquire(self, *, blocking: bool = True, timeout: Ttl = None) -> bool:
        """Take the lock; when ``blocking``, wait up to ``timeout``, or when it is ``None`` up
        to the timeout the lock was made with (``cache.lock(..., timeout=...)``; forever if
        that is ``None`` too).

        Returns whether it was acquired (held already by this owner: refreshed, true).
        ``blocking=False`` tries once: a ``timeout`` with it raises ``InvalidCacheValue``, as
        does acquiring a lock restored without a ttl.
        """
        ...

    def release(self) -> None:
        """Give the lock up. Raises ``LockNotOwned`` if this owner no longer holds it."""
        ...

    def force_release(self) -> None:
        """Give the lock up whoever holds it (nothing if it is free): for an operator or a
        cleanup that knows the holder is gone, never for normal release."""
        ...

    def extend(self, ttl: Ttl) -> None:
        """Hold the lock for ``ttl`` from now. Raises ``LockNotOwned`` if not held, and
        ``InvalidCacheValue`` if ``ttl`` is not positive (``release`` gives a lock up)."""
        ...

    def owned(self) -> bool:
        """Whether this owner holds the lock now."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class CacheStore(Protocol):
    """Values by key in one namespace.

    * A miss is the given default (``None``), never an exception.
    * Values are JSON-compatible data or attrs classes, encoded by the project's codec; a
      value that cannot be encoded, or would read back as something else (bytes, NaN,
      infinities, dict keys that are not text), raises ``InvalidCacheValue`` and nothing is
      written; a stored value that cannot be decoded raises ``UndecodableValue`` naming the
      key.
    * Keys are non-empty strings without control characters, at most 250 characters
      (``InvalidCacheKey`` otherwise); a negative ttl, or one longer than ``timedelta.max``,
      raises ``InvalidCacheValue``.
      ``get_many`` and ``delete_many`` refuse one string (``InvalidCacheKey``: it would be
      read as its characters), ``set_many`` anything but a mapping (``InvalidCacheValue``).
    * A key whose ttl has passed is absent, exactly from its expiry on.
    """

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key``, or ``default``."""
        ...

    def set(self, key: str, value: Any, ttl: Ttl = None) -> None:
        """Store ``value`` at ``key`` for ``ttl`` (forever if ``None``)."""
        ...

    def add(self, key: str, value: Any, ttl: Ttl = None) -> bool:
        """Store only if ``key`` is absent, atomically; returns whether it stored."""
        ...

    def forever(self, key: str, value: Any) -> None:
        """Store without expiry."""
        ...

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it was there."""
        ...

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and delete, atomically: of concurrent pulls of one value, one gets it. A stored
        value that cannot be decoded is kept (``UndecodableValue``)."""
        ...

    def touch(self, key: str, ttl: Ttl) -> bool:
        """Reset ``key``'s expiry to ``ttl`` from now; returns whether the key exists."""
        ...

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the keys that are present, in one round trip."""
        ...

    def set_many(self, values: Mapping[str, Any], ttl: Ttl = None) -> None:
        """Store every value for ``ttl``, in one round trip."""
        ...

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the keys in one round trip; returns how many were there."""
        ...

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` atomically, creating the key at 0 if missing and keeping its ttl.

        Raises ``InvalidCacheValue`` if the stored value is not an integer.
        """
        ...

    def decrement(self, key: str, by: int = 1) -> int:
        """``increment(key, -by)``."""
        ...

    def remember(self, key: str, ttl: Ttl, compute: Callable[[], T], *, wait: Ttl = 10.0) -> T:
        """The value at ``key``, computing and storing it on a miss; either way as a read
        gives it back (JSON data: the computer gets an attrs value as its dict too).

        Single flight: across threads and processes one caller computes a given key while the
        others wait (up to ``wait``) for its value, raising ``CacheError`` if it takes longer.
        If ``compute`` raises, nothing is cached and the error propagates. The computer holds
        the key as long as it computes, however long that is (its lock lasts ``wait`` and is
        renewed while it runs); if its process dies, the lock expires within ``wait`` and
        another caller computes. A computed ``None`` is stored and served like any value
        (unlike Laravel's and Django's remember, which compute again). A ``compute`` that
        remembers its own key on this cache raises ``CacheError`` at once (it would wait for
        itself).
        """
        ...


@runtime_checkable
class TaggedCache(CacheStore, Protocol):
    """A view whose keys belong to tags; ``flush`` invalidates all of them in O(1)."""

    def flush(self) -> None:
        """Invalidate every key written through any view sharing one of these tags."""
        ...


class Effect(Protocol):
    """The record of one effect that must happen once, used as a context manager::

        with cache.idempotent(f"charge:{order_id}", ttl, fence=job.fence) as effect:
            if not effect.done:
                gateway.charge(order_id)

    * Entering reads and claims the record in one atomic step: ``done`` is true when an
      earlier run recorded the effect (skip it). Otherwise the record is marked pending for
      ``fence``; a pending mark of a greater fence (a newer attempt of the job is acting)
      raises ``StaleEffect`` instead.
    * Leaving without an exception records the effect as done, kept ``ttl``; leaving with one
      drops this attempt's pending mark, so a retry acts again. Recording raises
      ``StaleEffect`` when a newer attempt took the record meanwhile.
    * What it cannot do: an effect whose process dies between acting and leaving the block
      runs again (record it in the effect's own transaction for that: an outbox).
    """

    @property
    def done(self) -> bool:
        """Whether the effect was already recorded when the block was entered; reading it
        before the block is entered raises ``CacheError`` (the record was not read yet)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class CachePort(CacheStore, Protocol):
    """A cache namespace: the store, plus tags, locks, clearing and statistics.

    * ``clear`` removes this namespace's keys and nothing else (never FLUSHDB).
    * ``stats`` counts hits and misses; on a shared backend, for every process using it.
    """

    def tags(self, *names: str) -> TaggedCache:
        """A view of this cache whose keys are invalidated by flushing any of ``names``."""
        ...

    def lock(self, name: str, ttl: Ttl, *, timeout: Ttl = None) -> Lock:
        """A lock object (not yet acquired) named ``name`` that expires ``ttl`` after it is taken.

        ``ttl`` must be positive. ``timeout`` bounds how long the context manager and a
        blocking ``acquire()`` wait to acquire (forever if ``None``). Clearing the cache does
        not release locks.
        """
        ...

    def restore_lock(self, name: str, owner: str, ttl: Ttl = None, *, timeout: Ttl = None) -> Lock:
        """The lock ``name`` as held by ``owner`` (a ``Lock.owner`` read where it was taken,
        perhaps in another process): its ``release`` and ``extend`` act for that owner and
        raise ``LockNotOwned`` once the lock expired or another owner took it; ``owned`` says
        whether that owner holds it.

        ``owner`` follows the key rules (``InvalidCacheKey`` naming the lock owner). ``ttl``,
        positive when given, is what ``acquire`` holds the lock for (re-taking or refreshing it
        for that owner); without it, ``acquire`` raises ``InvalidCacheValue``. ``timeout`` is
        as for ``lock``.
        """
        ...

    def idempotent(self, key: str, ttl: Ttl, *, fence: int = 0) -> Effect:
        """The record of the effect ``key`` (see ``Effect``), kept ``ttl`` once done.

        ``ttl`` must be positive; ``fence`` is the acting attempt's fencing token
        (``current_job().fence``; 0 outside a job: no fencing), an int from 0 to 2**53 - 1
        (``InvalidCacheValue`` otherwise). Clearing the cache keeps effect records, as it
        keeps locks.
        """
        ...

    def clear(self) -> None:
        """Remove every key of this namespace."""
        ...

    def stats(self) -> CacheStats:
        """Hits, misses, writes, deletes and evictions so far."""
        ...
