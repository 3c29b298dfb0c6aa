"""The side-by-side table: a row per figure, a column per system, median (min-max) each."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

import attrs

from bench.harness import fmt


@attrs.frozen
class Row:
    """One figure of the table."""

    key: str
    label: str
    higher_is_better: bool = True


ROWS = (
    Row("single", "single enqueue, jobs/s"),
    Row("single_cpu", "single enqueue, producer CPU per job, µs", False),
    Row("single_redis_cpu", "single enqueue, server CPU per job (Redis or PostgreSQL), µs", False),
    Row("bulk", "bulk enqueue (batches of 1,000), jobs/s"),
    Row("drain", "drain {drain:,} no-op, 2 processes, incl. startup, jobs/s"),
    Row("drain_steady", "drain, after the first job, jobs/s"),
    Row("drain_cpu", "drain, worker processes' CPU per job (incl. startup), µs", False),
    Row("drain_redis_cpu", "drain, server CPU per job (Redis or PostgreSQL), µs", False),
    Row("startup", "worker startup (spawn to first job done), s", False),
    Row("efficiency", "CPU-bound efficiency incl. startup ({cpu} x 10 ms)"),
    Row("efficiency_steady", "CPU-bound efficiency, steady"),
    Row("p50", "latency p50, ms", False),
    Row("p90", "latency p90, ms", False),
    Row("p99", "latency p99, ms", False),
    Row("bytes", "bytes per pending job (Redis MEMORY USAGE; PostgreSQL tables + indexes)", False),
)

# samples[system][figure] -> one value per repetition
Samples = Mapping[str, Mapping[str, Sequence[float]]]


def cell(values: Sequence[float]) -> str:
    """``median (min-max)``, or a dash when the system has no such figure."""
    if not values:
        return "—"
    middle = fmt(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({fmt(min(values))}-{fmt(max(values))})"


def table(samples: Samples, labels: Mapping[str, str], runs: int, scale: Mapping[str, int]) -> str:
    """The markdown table, systems in the order of ``labels``."""
    systems = list(labels)
    head = f"| figure (median of {runs}; min-max) | " + " | ".join(labels.values()) + " |"
    lines = [head, "|---" * (len(systems) + 1) + "|"]
    for row in ROWS:
        cells = [cell(samples.get(key, {}).get(row.key, ())) for key in systems]
        lines.append(f"| {row.label.format(**scale)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _advantage(row: Row, ours: Sequence[float], theirs: Sequence[float]) -> str:
    if not ours or not theirs:
        return "—"
    mine, other = statistics.median(ours), statistics.median(theirs)
    ratio = mine / other if row.higher_is_better else other / mine
    return f"{ratio:.2f}"


def ratios(samples: Samples, labels: Mapping[str, str], ours: str) -> str:
    """How many times better ``ours`` is than each other system per figure (> 1: better)."""
    others = [key for key in labels if key != ours]
    head = f"| {labels[ours]} vs (> 1: Foundry better) | " + " | ".join(
        labels[key] for key in others
    )
    lines = [head + " |", "|---" * (len(others) + 1) + "|"]
    mine = samples.get(ours, {})
    for row in ROWS:
        cells = [
            _advantage(row, mine.get(row.key, ()), samples.get(key, {}).get(row.key, ()))
            for key in others
        ]
        lines.append(f"| {row.key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
