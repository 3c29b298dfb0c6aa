"""``foundry failed list|show|retry|forget|purge``: the dead letters."""

from __future__ import annotations

import click
import orjson
from rich.table import Table

from foundry.domain import JobState, validate_queue_name
from foundry.entrypoints.cli import common
from foundry.ports import DeadLetter, JobRecord

_QUEUE = click.option(
    "--queue", "queue_name", default="default", show_default=True, help="The queue to look in."
)
_ANY_QUEUE = click.option(
    "--queue", "queue_name", default=None, help="The queue to look in [default: every queue]."
)


def _last_error(letter: DeadLetter) -> str:
    if not letter.errors:
        return ""
    error = letter.errors[-1]
    return f"{error.type}: {error.message}"[:120]


def letters_table(letters: list[DeadLetter]) -> Table:
    """Dead letters, newest first."""
    table = Table(title="Dead letters")
    table.add_column("job id", overflow="fold")
    for column in ("queue", "name", "attempts", "died at", "reason", "last error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.job.id,
            letter.job.queue,
            letter.job.name,
            str(letter.attempts),
            letter.died_at.strftime("%Y-%m-%d %H:%M:%S"),
            common.escape(letter.reason),
            common.escape(_last_error(letter)),
        )
    return table


@click.group()
def failed() -> None:
    """Inspect, retry or forget dead jobs."""


@failed.command("list")
@_ANY_QUEUE
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, help="Per queue.")
@click.pass_context
def list_(ctx: click.Context, queue_name: str | None, limit: int, offset: int) -> None:
    """List dead letters (of one queue, or of each queue), newest first."""
    port = common.queue(ctx)
    names = [validate_queue_name(queue_name)] if queue_name else port.queues()
    letters = [letter for name in names for letter in port.dead(name, offset=offset, limit=limit)]
    if not letters:
        click.echo(f"no dead letters in {queue_name or 'any queue'}")
        return
    common.stdout().print(letters_table(letters))


def _show_record(record: JobRecord) -> None:
    out = common.stdout()
    job = record.job
    out.print(f"[bold]{job.id}[/]  {job.name}  queue={job.queue}  state={record.state.value}")
    out.print(f"attempts: {record.attempts} of {job.max_attempts}")
    if record.reason:
        out.print(f"reason: {common.escape(record.reason)}")
    out.print("payload: " + common.escape(orjson.dumps(job.payload).decode()))
    for error in record.errors:
        where = f" worker={error.worker}" if error.worker else ""
        died = f" signal={error.signal}" if error.signal is not None else ""
        died += f" exit={error.exit_code}" if error.exit_code is not None else ""
        out.print(f"\n[bold]attempt {error.attempt}[/]{where}{died}: {error.type}")
        out.print(common.escape(error.message))
        if error.traceback:
            out.print(common.escape(error.traceback.rstrip()), style="dim")


@failed.command()
@click.argument("job_id")
@_ANY_QUEUE
@click.pass_context
def show(ctx: click.Context, job_id: str, queue_name: str | None) -> None:
    """Show one job's payload, reason and full error history."""
    where = validate_queue_name(queue_name) if queue_name else None
    record = common.queue(ctx).get(job_id, where)
    if record is None:
        common.abort(
            f"no job {job_id!r} in {queue_name or 'any queue'}; list them with "
            "`foundry failed list`"
        )
    _show_record(record)


@failed.command()
@click.argument("job_ids", nargs=-1)
@_QUEUE
@click.option("--all", "every", is_flag=True, help="Retry every dead letter of the queue.")
@click.pass_context
def retry(ctx: click.Context, job_ids: tuple[str, ...], queue_name: str, every: bool) -> None:
    """Requeue dead jobs (the ones named, or --all) with a fresh attempt budget."""
    common.require_shared_queue(ctx, "retry")
    if bool(job_ids) == every:
        raise click.UsageError("name the job ids to retry, or pass --all (not both)")
    count = common.queue(ctx).requeue_dead(
        validate_queue_name(queue_name), list(job_ids) if job_ids else None
    )
    click.echo(f"requeued {count} job(s) in {queue_name}")
    if job_ids and count < len(job_ids):
        common.abort(f"{len(job_ids) - count} id(s) were not dead letters of {queue_name}")


@failed.command()
@click.argument("job_ids", nargs=-1, required=True)
@_QUEUE
@click.pass_context
def forget(ctx: click.Context, job_ids: tuple[str, ...], queue_name: str) -> None:
    """Delete the named dead letters for good."""
    common.require_shared_queue(ctx, "forget")
    port = common.queue(ctx)
    validate_queue_name(queue_name)
    missing = []
    for job_id in job_ids:
        record = port.get(job_id, queue_name)
        if record is None or record.state is not JobState.DEAD:
            missing.append(job_id)
            continue
        port.delete(queue_name, job_id)
    click.echo(f"forgot {len(job_ids) - len(missing)} dead letter(s) in {queue_name}")
    if missing:
        common.abort(f"not dead letters of {queue_name}: {', '.join(missing)}")


@failed.command()
@_QUEUE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, queue_name: str, yes: bool) -> None:
    """Delete every dead letter of a queue."""
    common.require_shared_queue(ctx, "purge")
    validate_queue_name(queue_name)
    if not yes:
        click.confirm(f"Delete every dead letter of {queue_name}?", abort=True)
    removed = common.queue(ctx).purge_dead(queue_name)
    click.echo(f"purged {removed} dead letter(s) from {queue_name}")
