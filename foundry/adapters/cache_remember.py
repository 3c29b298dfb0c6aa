"""Single-flight ``remember``: compute a missing value once across threads and processes.

Built on a cache adapter's lock primitives (``cache_lock.LockBackend``) and the few more in
``FlightBackend``: a miss takes the value's flight lock, whose holder computes (its lock
renewed while it does, ``cache_renewal.py``) while the others poll for the value.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs

from foundry.adapters.cache_lock import LockBackend, poll
from foundry.adapters.cache_renewal import RENEWER
from foundry.domain import CacheError

T = TypeVar("T")


class FlightBackend(LockBackend, Protocol):
    """What single-flight ``remember`` needs besides locks."""

    def flight_key(self, skey: str) -> str:
        """The lock key guarding the computation of ``skey``."""
        ...

    def flight_lookup(self, skey: str, label: str, count: bool) -> tuple[bool, Any]:
        """Whether ``skey`` is present, and its value (stats counted when ``count``)."""
        ...

    def flight_store(self, skey: str, label: str, value: Any, ttl_ms: int | None) -> Any:
        """Store a computed value; the value as a read gives it back (its JSON data)."""
        ...


@attrs.frozen
class Flight:
    """One ``remember`` call: where the value goes, for how long, and how long to wait."""

    skey: str
    label: str
    ttl: int | None
    wait: int


class _Acquired:
    """Marker: this caller holds the flight lock and must compute."""


#: The keys each thread is computing, by cache object: a computation that remembers its own
#: key would wait for itself until its wait ran out.
_computing = threading.local()


def remember(backend: FlightBackend, flight: Flight, compute: Callable[[], T]) -> T:
    """Single-flight compute-on-miss. ``flight.wait`` bounds the wait and is the lock's ttl."""
    found, value = backend.flight_lookup(flight.skey, flight.label, True)
    if found:
        return value  # type: ignore[no-any-return]
    mine = (id(backend), flight.skey)
    computing: set[tuple[int, str]] | None = getattr(_computing, "keys", None)
    if computing is None:
        computing = _computing.keys = set()
    if mine in computing:
        raise CacheError(
            f"remember({flight.label!r}) was called again inside its own computation, which "
            "would wait for itself; cache the inner value under another key"
        )
    computing.add(mine)
    try:
        return _remember_missing(backend, flight, compute)
    finally:
        computing.discard(mine)


def _remember_missing(backend: FlightBackend, flight: Flight, compute: Callable[[], T]) -> T:
    """Wait for another caller's value, or take the flight lock and compute it."""
    guard = (backend.flight_key(flight.skey), secrets.token_hex(16))

    def attempt() -> tuple[Any] | type[_Acquired] | None:
        if backend.lock_acquire(*guard, flight.wait):
            return _Acquired
        present, current = backend.flight_lookup(flight.skey, flight.label, False)
        return (current,) if present else None

    outcome = poll(attempt, backend.wait_now_ms, flight.wait)
    if outcome is None:
        raise CacheError(
            f"gave up after {flight.wait} ms waiting for another caller to compute "
            f"{flight.label!r}; raise remember()'s wait or make the computation faster"
        )
    if outcome is _Acquired:
        return _compute_holding(backend, flight, compute, guard)
    return outcome[0]  # type: ignore[index, no-any-return]


def _compute_holding(
    backend: FlightBackend, flight: Flight, compute: Callable[[], T], guard: tuple[str, str]
) -> T:
    try:
        present, current = backend.flight_lookup(flight.skey, flight.label, False)
        if present:
            return current  # type: ignore[no-any-return]
        with RENEWER.holding(backend, guard, flight.wait, flight.label):
            computed = compute()
        # The computer gets what every hit gets (an attrs value as its dict, a tuple as a
        # list), so code that reads the value works the same on a cold and a warm cache.
        value = backend.flight_store(flight.skey, flight.label, computed, flight.ttl)
        return value  # type: ignore[no-any-return]
    finally:
        backend.lock_release(*guard)
