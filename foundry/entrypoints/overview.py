"""What every queue looks like now, for the dashboard and the backend metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from foundry.ports import QueuePort, QueueStats


def read_queues(queue: QueuePort) -> tuple[list[QueueStats], list[timedelta | None]]:
    """Every queue's stats and oldest wait: three calls whatever the number of queues, the
    oldest wait asked only of queues with ready jobs."""
    rows = queue.stats_many(queue.queues())
    return rows, oldest_waits(queue, rows)


def oldest_waits(queue: QueuePort, rows: Sequence[QueueStats]) -> list[timedelta | None]:
    """How long each row's oldest ready job has waited (one call, for the queues with ready
    jobs; ``None`` for the others)."""
    waiting = [row.queue for row in rows if row.ready]
    ages = dict(zip(waiting, queue.oldest_ready_age(waiting) if waiting else [], strict=True))
    return [ages.get(row.queue) for row in rows]
