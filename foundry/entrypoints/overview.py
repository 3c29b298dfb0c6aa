"""What every queue looks like now, for the dashboard and the backend metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import attrs

from foundry.domain import QueueBroken, QueueUnavailable
from foundry.ports import QueuePort, QueueStats


@attrs.frozen
class Overview:
    """Every queue's stats and oldest wait (in the same order), and the queues whose data the
    backend refuses to read (a key of the wrong type), apart."""

    rows: list[QueueStats]
    ages: list[timedelta | None]
    broken: list[QueueBroken]


def read_queues(queue: QueuePort, names: Sequence[str] | None = None) -> Overview:
    """The stats and oldest wait of each of ``names`` (every queue by default): three calls
    whatever the number of queues, the oldest wait asked only of queues with ready jobs. A
    queue whose data is broken, in either reading, is named in ``broken`` instead."""
    rows, broken = read_stats(queue, queue.queues() if names is None else names)
    ages, unreadable = read_ages(queue, [row.queue for row in rows if row.ready])
    if unreadable:
        gone = {error.queue for error in unreadable}
        rows = [row for row in rows if row.queue not in gone]
        broken = _in_order(broken + unreadable, names)
    return Overview(rows, [ages.get(row.queue) for row in rows], broken)


@attrs.frozen
class QueueUnreachable:
    """A queue whose part of the backend cannot be reached (a Redis Cluster master that is
    down), while other queues' parts answer; ``reason`` is the backend's error."""

    queue: str
    reason: str


def read_each_queue(
    queue: QueuePort, names: Sequence[str]
) -> tuple[Overview, list[QueueUnreachable]]:
    """``read_queues`` of each of ``names`` alone, for a backend that answered for some
    queues and not others: the overview of those it could read, and those it could not. If
    it could read none, the backend is down: its last ``QueueUnavailable`` propagates."""
    rows: list[QueueStats] = []
    ages: list[timedelta | None] = []
    broken: list[QueueBroken] = []
    failed: list[QueueUnavailable] = []
    unreachable: list[QueueUnreachable] = []
    for name in names:
        try:
            alone = read_queues(queue, [name])
        except QueueUnavailable as error:
            failed.append(error)
            unreachable.append(QueueUnreachable(name, str(error)))
            continue
        rows += alone.rows
        ages += alone.ages
        broken += alone.broken
    if failed and not rows and not broken:
        raise failed[-1]
    return Overview(rows, ages, broken), unreachable


def _in_order(broken: list[QueueBroken], names: Sequence[str] | None) -> list[QueueBroken]:
    order = {name: index for index, name in enumerate(names or [])}
    return sorted(broken, key=lambda error: (order.get(error.queue, 0), error.queue))


def read_ages(
    queue: QueuePort, names: Sequence[str]
) -> tuple[dict[str, timedelta | None], list[QueueBroken]]:
    """The oldest wait of each of ``names`` in one call; if one queue's data is broken, each
    queue alone, so the others are still read and the broken ones are named."""
    if not names:
        return {}, []
    try:
        return dict(zip(names, queue.oldest_ready_age(names), strict=True)), []
    except QueueBroken:
        pass
    ages: dict[str, timedelta | None] = {}
    broken: list[QueueBroken] = []
    for name in names:
        try:
            ages[name] = queue.oldest_ready_age([name])[0]
        except QueueBroken as error:
            broken.append(error)
    return ages, broken


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
