"""What every queue looks like now, for the dashboard and the backend metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import attrs

from foundry.domain import QueueBroken
from foundry.ports import QueuePort, QueueStats


@attrs.frozen
class Overview:
    """Every queue's stats and oldest wait (in the same order), and the queues whose data the
    backend refuses to read (a key of the wrong type), apart."""

    rows: list[QueueStats]
    ages: list[timedelta | None]
    broken: list[QueueBroken]


def read_queues(queue: QueuePort) -> Overview:
    """Every queue's stats and oldest wait: three calls whatever the number of queues, the
    oldest wait asked only of queues with ready jobs."""
    rows, broken = read_stats(queue, queue.queues())
    return Overview(rows, oldest_waits(queue, rows), broken)


def read_stats(
    queue: QueuePort, names: Sequence[str]
) -> tuple[list[QueueStats], list[QueueBroken]]:
    """The stats of each of ``names`` in one call; if one queue's data is broken, each queue
    alone, so the others are still read and the broken ones are named (in ``names``' order)."""
    try:
        return queue.stats_many(names), []
    except QueueBroken:
        pass
    rows: list[QueueStats] = []
    broken: list[QueueBroken] = []
    for name in names:
        try:
            rows.append(queue.stats(name))
        except QueueBroken as error:
            broken.append(error)
    return rows, broken


def oldest_waits(queue: QueuePort, rows: Sequence[QueueStats]) -> list[timedelta | None]:
    """How long each row's oldest ready job has waited (one call, for the queues with ready
    jobs; ``None`` for the others)."""
    waiting = [row.queue for row in rows if row.ready]
    ages = dict(zip(waiting, queue.oldest_ready_age(waiting) if waiting else [], strict=True))
    return [ages.get(row.queue) for row in rows]
