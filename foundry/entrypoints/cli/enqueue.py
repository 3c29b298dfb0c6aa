"""``foundry enqueue``: put one job on the queue from a shell."""

from __future__ import annotations

import contextlib
import math
from datetime import timedelta
from typing import Any

import click
import orjson

from foundry.application.dispatcher import Dispatcher
from foundry.domain import (
    MAX_DELAY,
    PRIORITY_MAX,
    PRIORITY_MIN,
    FoundryError,
    Job,
    QueueUnavailable,
    RunAfter,
    RunNow,
)
from foundry.entrypoints.apps import load_app
from foundry.entrypoints.cli import common
from foundry.ports import Duplicate


def _payload(raw: str) -> dict[str, object]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise click.BadParameter(
            f"is not JSON ({error}); pass an object like '{{\"n\": 3}}'", param_hint="--payload"
        ) from None
    if not isinstance(value, dict):
        raise click.BadParameter(
            "must be a JSON object of keyword arguments, like '{\"n\": 3}'",
            param_hint="--payload",
        )
    return value


def _build(ctx: click.Context, app: str | None, name: str, fields: dict[str, Any]) -> Job:
    """The job: the app's handler defaults when ``app`` is given, else Job's defaults."""
    box = common.container(ctx)
    if app:
        dispatcher = Dispatcher(common.queue(ctx), load_app(app, box), box.clock())
        return dispatcher.build(name, fields.pop("payload"), **fields)
    given = {key: value for key, value in fields.items() if value is not None}
    return Job(name, created_at=box.clock().now(), **given)


@click.command()
@click.argument("name")
@click.option("--payload", default="{}", show_default=True, help="Keyword arguments as JSON.")
@click.option(
    "--app",
    envvar="FOUNDRY_APP",
    default=None,
    help="module:registry; the handler's defaults (queue, retry, timeout) then apply and an "
    "unknown NAME is refused. Without it: queue default, the default retry policy.",
)
@click.option("--queue", "queue_name", default=None, help="[default: the handler's, or default]")
@click.option(
    "--delay",
    type=click.FloatRange(min=0, max=MAX_DELAY.total_seconds()),
    default=0.0,
    help=f"Seconds to wait before the job may run (at most {MAX_DELAY.total_seconds():.0f}).",
)
@click.option(
    "--priority",
    type=click.IntRange(PRIORITY_MIN, PRIORITY_MAX),
    default=None,
    help="Higher runs first [default: the handler's, or 0].",
)
@click.option("--id", "job_id", default=None, help="Job id (re-sending the same id is a no-op).")
@click.pass_context
def enqueue(
    ctx: click.Context,
    *,
    name: str,
    payload: str,
    app: str | None,
    queue_name: str | None,
    delay: float,
    priority: int | None,
    job_id: str | None,
) -> None:
    """Enqueue a job for the handler NAME; prints its id."""
    common.require_shared_queue(ctx, "enqueue")
    if math.isnan(delay):  # NaN passes FloatRange's comparisons
        raise click.BadParameter("must be a number of seconds, not nan", param_hint="--delay")
    fields: dict[str, Any] = {
        "payload": _payload(payload),
        "queue": queue_name,
        "priority": priority,
        "schedule": RunAfter(timedelta(seconds=delay)) if delay else RunNow(),
        "id": job_id,
    }
    job = _build(ctx, app, name, fields)
    try:
        outcome = common.queue(ctx).enqueue(job)
    except QueueUnavailable as error:
        common.abort(
            f"{common.escape(str(error))}; to retry safely, re-run with --id {job.id} "
            "(if the first attempt was stored, the re-send changes nothing)",
            common.Exit.UNAVAILABLE,
        )
    if isinstance(outcome, Duplicate):
        common.stderr().print(
            f"duplicate: job {outcome.existing_id} holds this unique key; nothing enqueued"
        )
        click.echo(outcome.existing_id)
        return
    click.echo(outcome.job_id)
    _note_paused(ctx, job.queue)


def _note_paused(ctx: click.Context, queue: str) -> None:
    """Say on stderr that ``queue`` is paused (the job is stored either way: a failure to
    read this is not the command's)."""
    with contextlib.suppress(FoundryError):
        if common.queue(ctx).stats(queue).paused:
            common.stderr().print(
                f"note: queue {queue} is paused, so the job waits until "
                f"`foundry queue resume {queue}`",
                soft_wrap=True,
            )
