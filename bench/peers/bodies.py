"""The job bodies every system runs, and how their log lines are read back (stdlib only).

Each body appends one line of integers to ``$BENCH_LOG_DIR/<pid>.log`` with an unbuffered
``os.write``: ``noop`` its end, ``spin`` its start and end, ``stamp`` its number and start.
Times are ``time.perf_counter_ns()``, CLOCK_MONOTONIC on Linux: one clock for every process,
so the bench's spawn time, a producer's send time and a body's times compare directly. A job
counts as done when its body has logged, for every system alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

LOG_DIR = "BENCH_LOG_DIR"

_log: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own file


def _write(line: str) -> None:
    global _log  # noqa: PLW0603 - one log file per process, opened on first use
    pid = os.getpid()
    if _log is None or _log[0] != pid:
        path = Path(os.environ[LOG_DIR]) / f"{pid}.log"
        _log = (pid, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_log[1], line.encode())


def noop() -> None:
    """Nothing but the line that says it ran: ``end``."""
    _write(f"{time.perf_counter_ns()}\n")


def spin(ms: float = 10.0, nap: bool = False) -> None:
    """Busy-loop until this thread has used ``ms`` milliseconds of CPU: ``start end``.

    The work is counted in CPU time, not wall time, so a job that shares its process with other
    threads (Dramatiq's) does the same work as one that has its process to itself. ``nap``:
    sleep ``ms`` instead (jobs of one length whatever else runs: for counting what a worker
    does per job on a busy machine).
    """
    start = time.perf_counter_ns()
    if nap:
        time.sleep(ms / 1000)
    until = time.thread_time_ns() + (0 if nap else int(ms * 1e6))
    while time.thread_time_ns() < until:
        pass
    _write(f"{start} {time.perf_counter_ns()}\n")


def stamp(n: int) -> None:
    """When job ``n`` began: ``n start``."""
    _write(f"{n} {time.perf_counter_ns()}\n")


Body = Callable[..., None]
BODIES: dict[str, Body] = {"noop": noop, "spin": spin, "stamp": stamp}


def read_log(directory: Path) -> list[list[int]]:
    """Every line every process logged under ``directory``, as lists of integers."""
    rows: list[list[int]] = []
    for path in sorted(directory.glob("*.log")):
        rows += [[int(part) for part in line.split()] for line in path.read_text().splitlines()]
    return rows


class LineCounter:
    """Counts the lines logged under a directory, reading only what is new at each call."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}
        self._lines = 0

    def count(self) -> int:
        """Lines logged so far."""
        for path in self.directory.glob("*.log"):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as log:
                log.seek(offset)
                new = log.read()
            self._offsets[path] = offset + len(new)
            self._lines += new.count(b"\n")
        return self._lines
