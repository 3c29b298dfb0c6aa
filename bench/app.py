"""The handlers the benchmarks run (``foundry work --app bench.app:registry``).

``noop`` does nothing. ``spin`` burns the CPU for ``ms`` milliseconds and ``stamp`` notes when
it started; both append one line per job to ``$FOUNDRY_BENCH_LOG/<pid>.log`` with an unbuffered
``os.write``, so nothing is lost when a child exits without flushing. Times are
``time.perf_counter_ns()``: CLOCK_MONOTONIC on Linux, one clock for every process, so a
producer's send time and a child's start time compare directly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from foundry.application.registry import JobRegistry

QUEUE = "bench"
LOG_DIR = "FOUNDRY_BENCH_LOG"

registry = JobRegistry()
_log: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own file


def _write(line: str) -> None:
    global _log  # noqa: PLW0603 - one log file per process, opened on first use
    pid = os.getpid()
    if _log is None or _log[0] != pid:
        path = Path(os.environ[LOG_DIR]) / f"{pid}.log"
        _log = (pid, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_log[1], line.encode())


@registry.job(name="bench.noop", queue=QUEUE)
def noop() -> None:
    """Nothing at all: what is left is the queue's and the pool's cost."""


@registry.job(name="bench.spin", queue=QUEUE)
def spin(ms: float = 10.0) -> None:
    """Busy-loop for ``ms`` milliseconds; logs ``start end`` (ns) of the work."""
    start = time.perf_counter_ns()
    until = start + int(ms * 1e6)
    while time.perf_counter_ns() < until:
        pass
    _write(f"{start} {time.perf_counter_ns()}\n")


@registry.job(name="bench.stamp", queue=QUEUE)
def stamp(n: int) -> None:
    """Log ``n start`` (ns): when job ``n`` began, for enqueue-to-start latency."""
    _write(f"{n} {time.perf_counter_ns()}\n")


def read_log(directory: Path) -> list[list[int]]:
    """Every line every process logged, as lists of integers."""
    rows: list[list[int]] = []
    for path in sorted(directory.glob("*.log")):
        rows += [[int(part) for part in line.split()] for line in path.read_text().splitlines()]
    return rows
