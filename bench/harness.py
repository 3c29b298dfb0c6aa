"""Repeat-and-median: how every figure in bench/ is measured and summarised."""

from __future__ import annotations

import math
import os
import statistics
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs

from bench.env import Env

Sample = Mapping[str, float]


@attrs.frozen
class Metric:
    """One number a workload reports per run, and the target it is held to (if any)."""

    key: str
    label: str
    unit: str
    target: float | None = None
    higher_is_better: bool = True

    def meets(self, value: float) -> bool | None:
        """Whether ``value`` reaches the target; ``None`` when there is no target."""
        if self.target is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target

    @property
    def target_text(self) -> str:
        """``>= 8,000`` or ``<= 0.5``, or empty."""
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {fmt(self.target)}"


@attrs.frozen
class Figure:
    """A metric over several runs: the median with min-max."""

    workload: str
    backend: str
    metric: Metric
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median of the samples."""
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        """The smallest sample."""
        return min(self.samples)

    @property
    def high(self) -> float:
        """The largest sample."""
        return max(self.samples)


RunOnce = Callable[[Env, str], Sample]


@attrs.frozen
class Workload:
    """A named measurement: ``run_once(env, backend)`` returns one sample of every metric."""

    name: str
    title: str
    backends: tuple[str, ...]
    metrics: tuple[Metric, ...]
    run_once: RunOnce
    full_only: bool = False


@attrs.frozen
class Outcome:
    """What measuring one workload on one backend gave: figures, or the error that stopped it."""

    workload: Workload
    backend: str
    figures: tuple[Figure, ...] = ()
    error: str | None = None
    load_before: float = 0.0
    load_after: float = 0.0
    seconds: float = 0.0


def measure(workload: Workload, env: Env, backend: str, runs: int) -> Outcome:
    """Run ``workload`` ``runs`` times on ``backend``; one error ends it with that error."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    samples: list[Sample] = []
    error = None
    try:
        for _ in range(runs):
            samples.append(workload.run_once(env, backend))
    except Exception:  # a broken workload must not stop the others; its error is reported
        error = traceback.format_exc(limit=-3).strip()
    figures = tuple(
        Figure(workload.name, backend, metric, tuple(sample[metric.key] for sample in samples))
        for metric in workload.metrics
        if samples and all(metric.key in sample for sample in samples)
    )
    return Outcome(
        workload,
        backend,
        figures,
        error,
        load_before,
        os.getloadavg()[0],
        time.perf_counter() - started,
    )


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed:`` ... ``elapsed()`` is seconds since entering."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


def rate(count: int, seconds: float) -> float:
    """``count`` per second (0 when no time passed)."""
    return count / seconds if seconds > 0 else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def fmt(value: float) -> str:
    """A figure for a table: thousands separators for big numbers, 3 significant digits else."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"
