"""``foundry enqueue``: put one job on the queue from a shell."""

from __future__ import annotations

from datetime import timedelta

import click
import orjson

from domain import PRIORITY_MAX, PRIORITY_MIN, Job, RunAfter, RunNow, new_job_id
from entrypoints.cli import common
from ports import Duplicate


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


@click.command()
@click.argument("name")
@click.option("--payload", default="{}", show_default=True, help="Keyword arguments as JSON.")
@click.option("--queue", "queue_name", default="default", show_default=True)
@click.option(
    "--delay",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Seconds to wait before the job may run.",
)
@click.option(
    "--priority",
    type=click.IntRange(PRIORITY_MIN, PRIORITY_MAX),
    default=0,
    show_default=True,
    help="Higher runs first.",
)
@click.option("--id", "job_id", default=None, help="Job id (re-sending the same id is a no-op).")
@click.pass_context
def enqueue(
    ctx: click.Context,
    *,
    name: str,
    payload: str,
    queue_name: str,
    delay: float,
    priority: int,
    job_id: str | None,
) -> None:
    """Enqueue a job for the handler NAME; prints its id."""
    common.require_shared_queue(ctx, "enqueue")
    box = common.container(ctx)
    schedule = RunAfter(timedelta(seconds=delay)) if delay else RunNow()
    job = Job(
        name,
        _payload(payload),
        queue=queue_name,
        priority=priority,
        schedule=schedule,
        created_at=box.clock().now(),
        id=job_id or new_job_id(),
    )
    outcome = common.queue(ctx).enqueue(job)
    if isinstance(outcome, Duplicate):
        common.stderr().print(
            f"duplicate: job {outcome.existing_id} holds this unique key; nothing enqueued"
        )
        click.echo(outcome.existing_id)
        return
    click.echo(outcome.job_id)
