"""The hits and misses of one process, kept in memory and added to its stats row in batches.

A read then writes nothing: its counts join the row at most once per interval (checked at
each operation, on the cache's clock), at ``stats()``, and when Python exits. What this costs:
a process's reads reach the figures other processes see up to an interval late, and a process
that ends without exiting Python (killed, ``os._exit``) loses its counts of the last interval.
"""

from __future__ import annotations

import os
import threading


class ReadCounts:
    """Hits and misses not yet written, and when they are next due (ms on the cache's clock).

    Thread-safe. A forked child starts from nothing: its parent's counts are its parent's.
    """

    def __init__(self, every_ms: int) -> None:
        self._every_ms = every_ms
        self._mutex = threading.Lock()
        self._pid = os.getpid()
        self._hits = self._misses = 0
        self._due: int | None = None

    def add(self, hits: int, misses: int, now_ms: int) -> bool:
        """Count a read's hits and misses; whether the counts are due to be written."""
        with self._mutex:
            self._own()
            self._hits += hits
            self._misses += misses
            if self._due is None:
                self._due = now_ms + self._every_ms
            return now_ms >= self._due

    def due(self, now_ms: int) -> bool:
        """Whether counts are waiting and their interval has passed."""
        with self._mutex:
            self._own()
            return self._due is not None and now_ms >= self._due

    def take(self) -> tuple[int, int]:
        """The counts waiting to be written, leaving none."""
        with self._mutex:
            self._own()
            taken, self._hits, self._misses, self._due = (self._hits, self._misses), 0, 0, None
            return taken

    def give_back(self, hits: int, misses: int, now_ms: int) -> None:
        """Counts taken but not written (the statement failed): they wait for the next try."""
        self.add(hits, misses, now_ms)

    def _own(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._hits, self._misses, self._due = os.getpid(), 0, 0, None
