"""``foundry failed list|show|retry|forget|purge``: the dead letters."""

from __future__ import annotations

import click
import orjson
from rich.table import Table

from foundry.domain import JobState, QueueBroken, validate_queue_name
from foundry.entrypoints.cli import common
from foundry.entrypoints.cli.jobs import show_record
from foundry.entrypoints.overview import read_stats
from foundry.ports import DeadLetter

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
            common.escape(letter.job.name),
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
@click.option(
    "--error-type",
    default=None,
    help="Only letters whose last error's type contains this (case-insensitive: valueerror "
    "matches builtins.ValueError), as the dashboard's filter.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON, as the dashboard's API gives it."
)
@click.pass_context
def list_(
    ctx: click.Context,
    *,
    queue_name: str | None,
    limit: int,
    offset: int,
    error_type: str | None,
    as_json: bool,
) -> None:
    """List dead letters (of one queue, or of each queue), newest first."""
    common.note_private_queue(ctx)
    port = common.queue(ctx)
    names = [common.note_unknown_queue(ctx, queue_name)] if queue_name else port.queues()
    rows, broken = read_stats(port, names)  # one call; only queues holding letters are read
    holding = [row.queue for row in rows if row.dead]
    letters = [letter for name in holding for letter in port.dead(name, offset=offset, limit=limit)]
    letters.sort(key=lambda letter: letter.died_at, reverse=True)  # every queue's together
    if error_type:
        letters = [letter for letter in letters if _last_type_has(letter, error_type)]
    if as_json:
        _print_json(letters, broken)
    elif not letters:
        matching = f" whose last error type contains {error_type!r}" if error_type else ""
        click.echo(f"no dead letters in {queue_name or 'any queue'}{matching}")
    else:
        common.stdout().print(letters_table(letters))
    if broken:
        common.abort("; ".join(common.escape(str(error)) for error in broken))


def _last_type_has(letter: DeadLetter, wanted: str) -> bool:
    return bool(letter.errors) and wanted.strip().lower() in letter.errors[-1].type.lower()


def _print_json(letters: list[DeadLetter], broken: list[QueueBroken]) -> None:
    """``{"letters": [letter...], "broken": [...]}`` in the dashboard API's shapes."""
    from foundry.entrypoints.dashboard.views import as_letter, letter_json  # noqa: PLC0415

    document = {
        "letters": [letter_json(as_letter(letter)) for letter in letters],
        "broken": [{"queue": error.queue, "broken": str(error)} for error in broken],
    }
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


@failed.command(cls=common.TakesIds)
@click.argument("job_id", callback=common.job_ids)
@_ANY_QUEUE
@click.option(
    "--json", "as_json", is_flag=True, help="Print the record as the dashboard's API gives it."
)
@click.pass_context
def show(ctx: click.Context, job_id: str, queue_name: str | None, as_json: bool) -> None:
    """Show one job's payload, reason and full error history."""
    common.note_private_queue(ctx)
    where = validate_queue_name(queue_name) if queue_name else None
    record = common.queue(ctx).get(job_id, where)
    if record is None:
        common.abort(
            f"no job {job_id!r} in {queue_name or 'any queue'}; list them with "
            "`foundry failed list`"
        )
    if as_json:
        from foundry.entrypoints.dashboard.views import record_json  # noqa: PLC0415

        click.echo(orjson.dumps(record_json(record), option=orjson.OPT_INDENT_2).decode())
    else:
        show_record(record)


def _by_queue(
    ctx: click.Context, job_ids: tuple[str, ...], queue_name: str | None
) -> tuple[dict[str, list[str]], list[str]]:
    """The named dead letters grouped by the queue each is in (found by id, as ``show``
    does, or in ``queue_name``), and the ids that are no dead letter."""
    port = common.queue(ctx)
    where = validate_queue_name(queue_name) if queue_name else None
    found: dict[str, list[str]] = {}
    missing = []
    for job_id in job_ids:
        record = port.get(job_id, where)
        if record is None or record.state is not JobState.DEAD:
            missing.append(job_id)
        else:
            found.setdefault(record.job.queue, []).append(job_id)
    return found, missing


def _every_queue(ctx: click.Context, queue_name: str | None, doing: str, yes: bool) -> list[str]:
    """The queues ``--all``/``purge`` act on: ``queue_name``, or every queue holding dead
    letters, named with their counts and confirmed first (unless ``yes``)."""
    if queue_name:
        return [common.require_known_queue(ctx, queue_name)]
    port = common.queue(ctx)
    rows, broken = read_stats(port, port.queues())  # one call; a broken queue is named
    chosen = {row.queue: row.dead for row in rows if row.dead}
    for error in broken:
        common.stderr().print(f"note: {common.escape(str(error))}", soft_wrap=True)
    if not chosen:
        click.echo("no dead letters in any queue")
    elif not yes:
        listed = ", ".join(f"{name} ({count})" for name, count in chosen.items())
        click.confirm(f"{doing} the dead letters of every queue: {listed}?", abort=True)
    return list(chosen)


@failed.command(cls=common.TakesIds)
@click.argument("job_ids", nargs=-1, callback=common.job_ids)
@_ANY_QUEUE
@click.option("--all", "every", is_flag=True, help="Retry every dead letter (asks which first).")
@click.option("--yes", is_flag=True, help="With --all and no --queue: do not ask.")
@click.pass_context
def retry(
    ctx: click.Context, job_ids: tuple[str, ...], queue_name: str | None, every: bool, yes: bool
) -> None:
    """Requeue dead jobs (the ones named, found in whichever queue holds them, or --all of
    --queue, or of every queue after asking) with a fresh attempt budget."""
    common.require_shared_queue(ctx, "retry")
    if bool(job_ids) == every:
        raise click.UsageError("name the job ids to retry, or pass --all (not both)")
    port = common.queue(ctx)
    if every:
        for name in _every_queue(ctx, queue_name, "Requeue", yes):
            click.echo(f"requeued {port.requeue_dead(name)} job(s) in {name}")
        return
    found, missing = _by_queue(ctx, job_ids, queue_name)
    for name, ids in found.items():
        click.echo(f"requeued {port.requeue_dead(name, ids)} job(s) in {name}")
    if missing:
        common.abort(
            f"not dead letters: {', '.join(missing)}; list them with `foundry failed list`"
        )


@failed.command(cls=common.TakesIds)
@click.argument("job_ids", nargs=-1, required=True, callback=common.job_ids)
@_ANY_QUEUE
@click.pass_context
def forget(ctx: click.Context, job_ids: tuple[str, ...], queue_name: str | None) -> None:
    """Delete the named dead letters for good (found in whichever queue holds them). A
    letter requeued meanwhile is pending again and is left as it is."""
    common.require_shared_queue(ctx, "forget")
    port = common.queue(ctx)
    found, missing = _by_queue(ctx, job_ids, queue_name)
    for name, ids in found.items():
        kept = [job_id for job_id in ids if not port.delete_dead(name, job_id)]
        click.echo(f"forgot {len(ids) - len(kept)} dead letter(s) in {name}")
        missing += kept
    if missing:
        common.abort(
            f"not dead letters: {', '.join(missing)}; list them with `foundry failed list`"
        )


@failed.command()
@_ANY_QUEUE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, queue_name: str | None, yes: bool) -> None:
    """Delete every dead letter of a queue (or of every queue); asks first."""
    common.require_shared_queue(ctx, "purge")
    chosen = _every_queue(ctx, queue_name, "Delete", yes)
    if queue_name and not yes:
        click.confirm(f"Delete every dead letter of {queue_name}?", abort=True)
    for name in chosen:
        click.echo(f"purged {common.queue(ctx).purge_dead(name)} dead letter(s) from {name}")
