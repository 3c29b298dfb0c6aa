"""What every queue looks like now, for the dashboard and the backend metrics."""

from __future__ import annotations

from datetime import timedelta

from foundry.ports import QueuePort, QueueStats


def read_queues(queue: QueuePort) -> tuple[list[QueueStats], list[timedelta | None]]:
    """Every queue's stats and oldest wait: three calls whatever the number of queues, the
    oldest wait asked only of queues with ready jobs."""
    rows = queue.stats_many(queue.queues())
    waiting = [row.queue for row in rows if row.ready]
    ages = dict(zip(waiting, queue.oldest_ready_age(waiting) if waiting else [], strict=True))
    return rows, [ages.get(row.queue) for row in rows]
