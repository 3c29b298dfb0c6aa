"""``foundry stats``: queue sizes and live workers, as tables or as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import click
from rich.table import Table

from foundry.domain import (
    JobState,
    QueueBroken,
    QueuesUnlisted,
    QueueUnavailable,
    validate_queue_name,
)
from foundry.entrypoints.cli import common
from foundry.entrypoints.overview import Overview, QueueUnreachable, read_each_queue, read_queues
from foundry.ports import JobRecord, QueuePort, QueueStats, WorkerInfo

#: A row of the queue table: a queue's stats, or why it could not be read.
Row = QueueStats | QueueBroken | QueueUnreachable

#: The most running jobs ``stats`` lists with their progress.
RUNNING_SHOWN = 20


def queue_table(rows: list[Row], ages: Mapping[str, timedelta | None]) -> Table:
    """One row per queue: current sizes and its oldest ready job's wait, then running totals
    (or that it is broken, or unreachable)."""
    table = Table(title="Queues")
    for column in (
        "queue",
        "ready",
        "delayed",
        "waiting",
        "active",
        "dead",
        "paused",
        "oldest wait",
    ):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for column in ("completed", "failed", "trimmed", "stale"):
        table.add_column(column, justify="right", style="dim")
    for row in rows:
        if isinstance(row, QueueBroken | QueueUnreachable):
            problem = "broken" if isinstance(row, QueueBroken) else "unreachable"
            table.add_row(row.queue, f"[bold red]{problem}[/]", *[""] * 10)
            continue
        age = ages.get(row.queue)
        table.add_row(
            row.queue,
            *(str(n) for n in (row.ready, row.delayed, row.waiting, row.active, row.dead)),
            "yes" if row.paused else "",
            "" if age is None else _duration(age),
            *(str(n) for n in (row.completed, row.failed, row.dead_trimmed, row.stale_rejected)),
        )
    return table


def _duration(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _since(moment: datetime, now: datetime) -> str:
    return _duration(now - moment)


def worker_table(rows: list[WorkerInfo], now: datetime) -> Table:
    """One row per live worker pool, with its counters."""
    table = Table(title="Workers")
    table.add_column("worker", overflow="fold")
    for column in ("host", "pid", "queues", "procs", "up"):
        table.add_column(column)
    for column in ("processed", "failed", "retried", "dead", "mean ms"):
        table.add_column(column, justify="right")
    for info in rows:
        table.add_row(
            common.escape(info.id),
            common.escape(info.host),
            str(info.pid),
            ",".join(info.queues),
            str(info.concurrency),
            _since(info.started_at, now),
            *(str(n) for n in (info.processed, info.failed, info.retried, info.dead)),
            f"{info.mean_runtime_ms:.1f}",
        )
    return table


@click.command()
@click.option("--queue", "names", multiple=True, help="Only these queues (repeatable).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (queues and workers, as the dashboard's API gives them).",
)
@click.pass_context
def stats(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show every queue (ready, delayed, active, dead) and the live workers.

    A queue whose part of the backend is down (a Redis Cluster master) is marked unreachable,
    the others shown, and the command exits 3 after them. If the list of queues cannot be
    read, the queues named with --queue are shown, or else those found on the masters that
    answered and those the live workers serve."""
    common.note_private_queue(ctx)
    port = common.queue(ctx)
    chosen, unlisted = _queues_to_read(ctx, port, names)
    live, workers_unread = _live_workers(ctx) if unlisted is None else unlisted.workers
    overview, unreachable = read_what_answers(port, chosen)
    rows = in_order(chosen, overview, unreachable)
    now = common.container(ctx).clock().now()
    reason = None if unlisted is None else unlisted.reason
    if as_json:
        click.echo(stats_document(overview, rows, live, now, unlisted=reason))
    else:
        _print_tables(port, rows, _ages_by_queue(overview), live, now, unlisted=reason)
    _exit_for(overview.broken, unreachable, workers_unread, reason)


@attrs.frozen
class _Unlisted:
    """Why the list of queues could not be read, and the live workers read instead (or why
    they could not be)."""

    reason: str
    workers: tuple[list[WorkerInfo] | None, str | None]


def _queues_to_read(
    ctx: click.Context, port: QueuePort, names: tuple[str, ...]
) -> tuple[list[str], _Unlisted | None]:
    """The queues named (each checked against the list of queues), or every queue listed.
    If the list cannot be read (its Redis Cluster master down): the queues named, or else
    those found on the parts of the backend that answered and those the live workers serve,
    and why; none to be had, the backend's error."""
    try:
        return [common.note_unknown_queue(ctx, name) for name in names] or port.queues(), None
    except QueueBroken:
        raise
    except QueueUnavailable as error:
        workers = _live_workers(ctx)
        found = error.found if isinstance(error, QueuesUnlisted) else ()
        served = sorted({*found, *(queue for info in workers[0] or () for queue in info.queues)})
        if not names and not served:
            raise
        chosen = [validate_queue_name(name) for name in names] or served
        return chosen, _Unlisted(str(error), workers)


def _live_workers(ctx: click.Context) -> tuple[list[WorkerInfo] | None, str | None]:
    """The live workers, or ``None`` and why they could not be read."""
    try:
        return common.workers(ctx).workers(), None
    except QueueUnavailable as error:
        return None, str(error)


def read_what_answers(port: QueuePort, names: list[str]) -> tuple[Overview, list[QueueUnreachable]]:
    """Every queue's overview, in a few calls; if the backend is unreachable for some of them
    (a Redis Cluster master down), each queue alone, so the others are still shown."""
    try:
        return read_queues(port, names), []  # a few calls, whatever the number of queues
    except QueueUnavailable:
        if len(names) < 2:
            raise
    return read_each_queue(port, names)


def _exit_for(
    broken: list[QueueBroken],
    unreachable: list[QueueUnreachable],
    workers_unread: str | None,
    unlisted: str | None,
) -> None:
    """Exit as the documented codes say, once the tables are out: 3 if a part of the backend
    was unreachable, 1 if a queue's data is broken."""
    problems = [str(error) for error in broken]
    problems += [f"queue {row.queue!r} is unreachable: {row.reason}" for row in unreachable]
    if unlisted is not None:
        problems.append(f"the list of queues could not be read: {unlisted}")
    if workers_unread is not None:
        problems.append(f"the workers could not be read: {workers_unread}")
    if not problems:
        return
    code = common.Exit.FAILED if len(problems) == len(broken) else common.Exit.UNAVAILABLE
    common.abort("; ".join(common.escape(problem) for problem in problems), code)


def in_order(
    names: list[str], overview: Overview, unreachable: list[QueueUnreachable]
) -> list[Row]:
    """The overview's rows, broken and unreachable queues, in the order of ``names``."""
    found: dict[str, Row] = {row.queue: row for row in overview.rows}
    found.update((error.queue, error) for error in overview.broken)
    found.update((row.queue, row) for row in unreachable)
    return [found[name] for name in dict.fromkeys(names)]


def _ages_by_queue(overview: Overview) -> dict[str, timedelta | None]:
    return {row.queue: age for row, age in zip(overview.rows, overview.ages, strict=True)}


def _print_tables(
    port: QueuePort,
    rows: list[Row],
    ages: Mapping[str, timedelta | None],
    live: list[WorkerInfo] | None,
    now: datetime,
    *,
    unlisted: str | None,
) -> None:
    out = common.stdout()
    if unlisted is not None:
        out.print(
            "the list of queues could not be read (see the error below): only the queues "
            "named with --queue, or else those found on the masters that answered and those "
            "the live workers serve, are shown"
        )
    if rows:
        out.print(queue_table(rows, ages))
    elif unlisted is None:
        out.print("no queues yet: nothing has been enqueued")
    running = running_with_progress(port, rows)
    if running:
        out.print(progress_table(running))
    if live is None:
        out.print("the workers could not be read (see the error below)")
    elif not live:
        out.print("no live workers (start one with `foundry work --app module:registry`)")
    else:
        out.print(worker_table(live, now))


def stats_document(
    overview: Overview,
    rows: list[Row],
    live: list[WorkerInfo] | None,
    now: datetime,
    *,
    unlisted: str | None = None,
) -> str:
    """The queues (each with its oldest wait, or what is broken in it, or why it could not be
    read) and the live workers (``null`` if they could not be read), as one JSON object;
    ``queues_unlisted``: why the list of queues could not be read (then ``queues`` holds
    only those named, or served by the live workers), if it could not."""
    from foundry.entrypoints.dashboard.views import worker_json  # noqa: PLC0415

    ages = _ages_by_queue(overview)
    document: dict[str, Any] = {
        "at": now.isoformat(),
        "queues": [_row_json(row, ages) for row in rows],
        "workers": None if live is None else [worker_json(info) for info in live],
    }
    if unlisted is not None:
        document["queues_unlisted"] = unlisted
    return json.dumps(document, indent=2)


def _row_json(row: Row, ages: Mapping[str, timedelta | None]) -> dict[str, Any]:
    from foundry.entrypoints.dashboard.views import stats_json  # noqa: PLC0415

    if isinstance(row, QueueStats):
        return stats_json(row, ages[row.queue])
    if isinstance(row, QueueBroken):
        return {"queue": row.queue, "broken": str(row)}
    return {"queue": row.queue, "unreachable": row.reason}


def running_with_progress(port: QueuePort, rows: list[Row]) -> list[JobRecord]:
    """The running jobs whose handler reported progress, at most ``RUNNING_SHOWN`` (one
    listing of each queue that has running jobs)."""
    found: list[JobRecord] = []
    for row in rows:
        if isinstance(row, QueueStats) and row.active and len(found) < RUNNING_SHOWN:
            active = port.jobs(row.queue, JobState.ACTIVE, limit=RUNNING_SHOWN)
            found += [record for record in active if record.progress is not None]
    return found[:RUNNING_SHOWN]


def progress_table(records: list[JobRecord]) -> Table:
    """One row per running job with its last progress report."""
    table = Table(title="Running, with progress")
    for column in ("job", "name", "queue", "worker", "progress"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.job.id,
            common.escape(record.job.name),
            record.job.queue,
            common.escape(record.worker or ""),
            common.escape(str(record.progress)),
        )
    return table
