"""Keeps the flight locks of running ``remember`` computations held, as a worker renews leases.

One thread per process (started at the first computation that needs it, and again in a forked
child) looks, every 10 ms, at the cache's clock of each running computation and extends its
lock by its ttl whenever a third of it has passed. A computation joins on start and leaves on
end (two dict operations), so a miss costs no thread of its own, and a slow computation runs
once. A computer whose process dies stops renewing: its lock expires within its ttl.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import attrs

from foundry.domain import CacheError

log = logging.getLogger(__name__)

#: How often (real seconds) the renewing thread reads each computation's clock: no round trip.
CHECK_EVERY = 0.01


class Extender(Protocol):
    """What renewing needs of a cache adapter."""

    def lock_extend(self, skey: str, token: str, ttl_ms: int) -> bool:
        """Hold for ``ttl_ms`` from now if ``token`` holds it; whether it did."""
        ...

    def wait_now_ms(self) -> int:
        """Now, in ms, on the cache's clock."""
        ...


@attrs.define(eq=False)
class _Held:
    """One running computation's lock, and when it was last renewed (cache clock, ms)."""

    backend: Extender
    skey: str
    token: str
    ttl: int
    label: str
    renewed: int


class Renewer:
    """The process's renewing thread and the locks it keeps held."""

    def __init__(self) -> None:
        self.start_over()

    def start_over(self) -> None:
        """A fresh start (also in a forked child, which has no renewing thread)."""
        self._cond = threading.Condition()
        self._held: set[_Held] = set()
        self._running = False

    @contextmanager
    def holding(
        self, backend: Extender, guard: tuple[str, str], ttl: int, label: str
    ) -> Iterator[None]:
        """Keep the lock ``guard`` (key, token) held for ``ttl`` at a time inside the block."""
        held = _Held(backend, *guard, ttl, label, backend.wait_now_ms())
        with self._cond:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="foundry-remember", daemon=True).start()
            self._held.add(held)
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._held.discard(held)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._held:
                    self._cond.wait()
                running = list(self._held)
            for held in running:
                self._renew_if_due(held)
            time.sleep(CHECK_EVERY)

    def _renew_if_due(self, held: _Held) -> None:
        now = held.backend.wait_now_ms()
        if now - held.renewed < held.ttl // 3:
            return
        try:
            extended = held.backend.lock_extend(held.skey, held.token, held.ttl)
        except CacheError as error:  # the backend may answer at the next check
            log.warning("could not extend remember(%r)'s lock yet: %s", held.label, error)
            return
        with self._cond:
            if held not in self._held:  # finished meanwhile: its lock is released
                return
            if extended:
                held.renewed = now
                return
            self._held.discard(held)
        log.warning(
            "remember(%r) lost its lock while computing: another caller may compute too",
            held.label,
        )


RENEWER = Renewer()
os.register_at_fork(after_in_child=RENEWER.start_over)
