"""The demo's closing report: what happened, how fast, and whether every job is accounted for."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from rich.table import Table

from foundry.application.outcome import OutcomeKind
from foundry.domain import JobState
from foundry.entrypoints.demo.plan import EXPECTED_DEAD
from foundry.entrypoints.demo.tally import Tally, percentile
from foundry.ports import QueuePort


@attrs.frozen
class Accounting:
    """Where every enqueued job ended, read back from the queue."""

    completed: int
    dead: int
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Every job completed, or dead because it was meant to be."""
        return not self.unexpected


def account(queue: QueuePort, ids: Iterable[str], queue_name: str) -> Accounting:
    """Look every job up and sort it: completed, expected dead, or a problem."""
    completed = dead = 0
    unexpected: list[str] = []
    for job_id in ids:
        record = queue.get(job_id, queue_name)
        if record is not None and record.state is JobState.COMPLETED:
            completed += 1
        elif record is not None and record.state is JobState.DEAD and _meant(record.job.name):
            dead += 1
        else:
            state = record.state.value if record else "missing"
            unexpected.append(f"{job_id} ({state})")
    return Accounting(completed, dead, tuple(unexpected))


def _meant(name: str) -> bool:
    return name in EXPECTED_DEAD


def summary_table(
    tally: Tally, jobs: int, elapsed_s: float, accounting: Accounting, backend: str = "memory"
) -> Table:
    """Done, retried, dead with reasons, throughput and enqueue-to-start latency."""
    table = Table(title=f"Demo summary ({backend} queue)", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    rows = [
        ("jobs enqueued", str(jobs)),
        ("done", str(tally.outcomes[OutcomeKind.COMPLETED])),
        ("retried (attempts)", str(tally.outcomes[OutcomeKind.RETRIED])),
        ("dead", str(tally.outcomes[OutcomeKind.DEAD])),
        ("released", str(tally.outcomes[OutcomeKind.RELEASED])),
        ("elapsed", f"{elapsed_s:.2f} s"),
        ("throughput", f"{tally.finished / elapsed_s:.0f} jobs/s" if elapsed_s else "-"),
        ("enqueue-to-start p50", f"{percentile(tally.start_latency_ms, 0.50):.1f} ms"),
        ("enqueue-to-start p99", f"{percentile(tally.start_latency_ms, 0.99):.1f} ms"),
        ("accounted for", f"{accounting.completed + accounting.dead} of {jobs}"),
    ]
    rows += [(f"dead: {count}x", reason) for reason, count in tally.dead_reasons.items()]
    for what, value in rows:
        table.add_row(what, value.replace("[", r"\["))
    return table


def children_table(tally: Tally) -> Table:
    """How many attempts each child process ran."""
    table = Table(title="Per child")
    table.add_column("child pid", justify="right")
    table.add_column("attempts", justify="right")
    for pid, count in sorted(tally.per_child.items()):
        table.add_row(str(pid), str(count))
    return table
