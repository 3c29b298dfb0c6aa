"""``foundry job show|cancel``: one job, by id, in whatever state it is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn

import click
import orjson

from foundry.domain import JobState, Limit, validate_queue_name
from foundry.entrypoints.cli import common
from foundry.ports import JobRecord

#: Run times from this year on are no run time: a job set aside for its limit (Redis shows the
#: latest moment, PostgreSQL 9999-12-31).
LATEST_YEAR = 9999

_ANY_QUEUE = click.option(
    "--queue", "queue_name", default=None, help="The queue to look in [default: every queue]."
)


def show_record(record: JobRecord) -> None:
    """Print a job's record: state, attempts, reason, payload, result and error history."""
    out = common.stdout()
    job = record.job
    name = common.escape(job.name)
    out.print(f"[bold]{job.id}[/]  {name}  queue={job.queue}  state={record.state.value}")
    out.print(f"attempts: {record.attempts} of {job.max_attempts}")
    out.print(times(record))
    if job.after:
        out.print(f"waits for: {', '.join(job.after)} (if one fails: {job.after_failure.value})")
    if job.limit is not None:
        out.print(f"limit: {_limit_text(job.limit)}")
    if record.state is JobState.DELAYED and not _runs_at(record):
        out.print(_waiting_text(record))
    if record.worker:
        out.print(f"worker: {common.escape(record.worker)}")
    if record.progress is not None:
        out.print(f"progress: {common.escape(str(record.progress))}")
    if record.reason:
        out.print(f"reason: {common.escape(record.reason)}")
    out.print("payload: " + common.escape(orjson.dumps(job.payload).decode()))
    if record.state is JobState.COMPLETED:
        out.print("result: " + common.escape(orjson.dumps(record.result).decode()))
    for error in record.errors:
        where = f" worker={common.escape(error.worker)}" if error.worker else ""
        died = f" signal={error.signal}" if error.signal is not None else ""
        died += f" exit={error.exit_code}" if error.exit_code is not None else ""
        out.print(f"\n[bold]attempt {error.attempt}[/]{where}{died}: {common.escape(error.type)}")
        out.print(common.escape(error.message))
        if error.traceback:
            out.print(common.escape(error.traceback.rstrip()), style="dim")


def _limit_text(limit: Limit) -> str:
    parts = [f"key {common.escape(repr(limit.key))}"]
    if limit.concurrency is not None:
        parts.append(f"at most {limit.concurrency} at once")
    if limit.rate is not None:
        parts.append(f"{limit.rate.count} per {limit.rate.per.total_seconds():g} s")
    return ", ".join(parts)


def _runs_at(record: JobRecord) -> bool:
    """Whether a delayed job has a run time (one set aside for its limit has none)."""
    return record.run_at is not None and record.run_at.year < LATEST_YEAR


def _waiting_text(record: JobRecord) -> str:
    """What a delayed job with no run time waits for."""
    if record.job.limit is not None:
        return "runs when its limit key frees a slot or hands it its rate turn"
    return "runs at: no time set"


def times(record: JobRecord) -> str:
    """When the job was enqueued, and when it runs (delayed), its lease ends (running) or
    it ended, in UTC."""
    shown = [f"enqueued {_utc(record.enqueued_at)}"]
    if record.state is JobState.DELAYED and record.run_at is not None and _runs_at(record):
        shown.append(f"runs at {_utc(record.run_at)}")
    if record.state is JobState.ACTIVE and record.lease_deadline is not None:
        shown.append(f"lease until {_utc(record.lease_deadline)}")
    if record.finished_at is not None:
        shown.append(f"ended {_utc(record.finished_at)}")
    return ", ".join(shown)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _not_found(job_id: str, queue_name: str | None) -> NoReturn:
    common.abort(
        f"no job {job_id!r} in {queue_name or 'any queue'} (completed and cancelled records "
        "are kept for a limited time); check the id"
    )


@click.group()
def job() -> None:
    """Show or cancel one job by its id."""


@job.command(cls=common.TakesIds)
@click.argument("job_id", callback=common.job_ids)
@_ANY_QUEUE
@click.option(
    "--json", "as_json", is_flag=True, help="Print the record as the dashboard's API gives it."
)
@click.pass_context
def show(ctx: click.Context, job_id: str, queue_name: str | None, as_json: bool) -> None:
    """Show one job: state, attempts, payload, result or reason, and its error history."""
    common.note_private_queue(ctx)
    where = validate_queue_name(queue_name) if queue_name else None
    record = common.queue(ctx).get(job_id, where)
    if record is None:
        _not_found(job_id, queue_name)
    if as_json:
        from foundry.entrypoints.dashboard.views import record_json  # noqa: PLC0415

        click.echo(orjson.dumps(record_json(record), option=orjson.OPT_INDENT_2).decode())
    else:
        show_record(record)


@job.command(cls=common.TakesIds)
@click.argument("job_id", callback=common.job_ids)
@_ANY_QUEUE
@click.option("--reason", default="cancelled by an operator", show_default=True)
@click.pass_context
def cancel(ctx: click.Context, job_id: str, queue_name: str | None, reason: str) -> None:
    """Cancel a job: a pending one is kept as cancelled and never runs; a running one is
    stopped by its worker (JobCancelled raised in the handler, killed if it runs on)."""
    common.require_shared_queue(ctx, "cancel")
    where = validate_queue_name(queue_name) if queue_name else None
    state = common.queue(ctx).cancel(job_id, where, reason)
    if state is None:
        _not_found(job_id, queue_name)
    elif state is JobState.CANCELLED:
        click.echo(f"job {job_id} is cancelled")
    elif state is JobState.ACTIVE:
        click.echo(f"job {job_id} is running; its worker was asked to stop it")
    else:
        common.abort(f"job {job_id} has already ended ({state.value}); nothing to cancel")
