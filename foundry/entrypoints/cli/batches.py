"""``foundry batch show|cancel|list``: batches, by id or by queue."""

from __future__ import annotations

from typing import NoReturn

import click
import orjson
from rich.table import Table

from foundry.domain import validate_queue_name
from foundry.entrypoints.cli import common
from foundry.ports import BatchRecord

_ANY_QUEUE = click.option(
    "--queue", "queue_name", default=None, help="The queue to look in [default: every queue]."
)


def _show(record: BatchRecord) -> None:
    out = common.stdout()
    progress = record.progress
    out.print(f"[bold]{record.id}[/]  queue={record.queue}  state={record.state}")
    out.print(
        f"members: {progress.total}  pending: {progress.pending}  completed: "
        f"{progress.completed}  failed: {progress.failed}  cancelled: {progress.cancelled}"
    )
    if progress.allow_failures:
        out.print("failures allowed")
    out.print(f"created: {record.created_at.isoformat()}")
    if record.finished_at is not None:
        out.print(f"ended: {record.finished_at.isoformat()}")
    if record.reason:
        out.print(f"cancelled: {common.escape(record.reason)}")
    unfired = "never: the batch ended without it" if progress.finished else "not yet"
    for which, job_id in sorted(record.callbacks.items()):
        fired = "enqueued" if which in record.fired else unfired
        out.print(f"{which.value}: job {job_id} ({fired})")


def _not_found(batch_id: str, queue_name: str | None) -> NoReturn:
    common.abort(
        f"no batch {batch_id!r} in {queue_name or 'any queue'} (ended batches are kept as "
        "long as completed jobs); check the id with `foundry batch list`"
    )


@click.group()
def batch() -> None:
    """Show, list or cancel batches."""


_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON, as the dashboard's API gives it."
)


def _json(value: object) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@batch.command(cls=common.TakesIds)
@click.argument("batch_id", callback=common.batch_id)
@_ANY_QUEUE
@_JSON
@click.pass_context
def show(ctx: click.Context, batch_id: str, queue_name: str | None, as_json: bool) -> None:
    """Show one batch: its progress, state and callbacks."""
    common.note_private_queue(ctx)
    where = validate_queue_name(queue_name) if queue_name else None
    record = common.batches(ctx).batch(batch_id, where)
    if record is None:
        _not_found(batch_id, queue_name)
    if as_json:
        from foundry.entrypoints.dashboard.batch_views import batch_json  # noqa: PLC0415

        _json(batch_json(record))
    else:
        _show(record)


@batch.command(name="list")
@_ANY_QUEUE
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Per queue."
)
@click.option(
    "--offset",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Skip the newest N (per queue).",
)
@_JSON
@click.pass_context
def list_batches(
    ctx: click.Context, queue_name: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """The newest batches (of one queue, or of each queue), with their progress."""
    common.note_private_queue(ctx)
    if queue_name:
        common.note_unknown_queue(ctx, queue_name)
    names = [validate_queue_name(queue_name)] if queue_name else common.queue(ctx).queues()
    port = common.batches(ctx)
    records = [
        record for name in names for record in port.batches(name, offset=offset, limit=limit)
    ]
    if as_json:
        from foundry.entrypoints.dashboard.batch_views import batch_json  # noqa: PLC0415

        shown = [batch_json(record) for record in records]
        _json({"queue": queue_name, "offset": offset, "limit": limit, "batches": shown})
        return
    if not records:
        click.echo(f"no batches kept in {f'queue {queue_name}' if queue_name else 'any queue'}")
        return
    common.stdout().print(_table(records, queue_name))


def _table(records: list[BatchRecord], queue_name: str | None) -> Table:
    table = Table(title=f"Batches of {queue_name}" if queue_name else "Batches")
    table.add_column("batch", overflow="fold")
    for column in ("queue", "state"):
        table.add_column(column, overflow="fold")
    for column in ("members", "pending", "completed", "failed", "cancelled"):
        table.add_column(column, justify="right")
    for record in records:
        progress = record.progress
        table.add_row(
            record.id,
            record.queue,
            record.state,
            str(progress.total),
            str(progress.pending),
            str(progress.completed),
            str(progress.failed),
            str(progress.cancelled),
        )
    return table


@batch.command(cls=common.TakesIds)
@click.argument("batch_id", callback=common.batch_id)
@_ANY_QUEUE
@click.option("--reason", default="cancelled by an operator", show_default=True)
@click.pass_context
def cancel(ctx: click.Context, batch_id: str, queue_name: str | None, reason: str) -> None:
    """Cancel a batch: its pending jobs are cancelled, its running ones asked to stop, and its
    `then` callback never runs (`finally` does, once every job ended)."""
    common.require_shared_queue(ctx, "cancel")
    where = validate_queue_name(queue_name) if queue_name else None
    before = common.batches(ctx).batch(batch_id, where)
    if before is None:
        _not_found(batch_id, queue_name)
    if before.progress.finished:
        common.abort(f"batch {batch_id} has already ended ({before.state}); nothing to cancel")
    record = common.batches(ctx).cancel_batch(batch_id, where, reason)
    if record is None:
        _not_found(batch_id, queue_name)
    click.echo(
        f"batch {batch_id} is {record.state}: {record.progress.cancelled} job(s) cancelled, "
        f"{record.progress.pending} still running"
    )
