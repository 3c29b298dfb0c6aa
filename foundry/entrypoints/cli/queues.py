"""``foundry queue pause|resume|purge``: admin actions on one queue."""

from __future__ import annotations

import click

from foundry.domain import validate_queue_name
from foundry.entrypoints.cli import common


@click.group("queue")
def queue_group() -> None:
    """Pause, resume or purge a queue."""


@queue_group.command()
@click.argument("name")
@click.option("--create", is_flag=True, help="Pause a queue that has never held a job yet.")
@click.pass_context
def pause(ctx: click.Context, name: str, create: bool) -> None:
    """Stop workers from taking jobs of queue NAME (enqueueing still works)."""
    common.require_shared_queue(ctx, "pause")
    port = common.queue(ctx)
    known = port.queues()
    if validate_queue_name(name) not in known and not create:
        common.abort(
            f"queue {name!r} has never held a job (known: {', '.join(known) or 'none'}); "
            "check the name, or pass --create to pause it ahead of time"
        )
    port.pause(name)
    click.echo(f"paused {name}; `foundry queue resume {name}` undoes it")


@queue_group.command()
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Let workers take jobs of queue NAME again."""
    common.require_shared_queue(ctx, "resume")
    common.require_known_queue(ctx, name)  # a typo would resume nothing and say it did
    common.queue(ctx).resume(name)
    click.echo(f"resumed {name}")


@queue_group.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete every pending (ready and delayed) job of queue NAME; running jobs finish."""
    common.require_shared_queue(ctx, "purge")
    common.require_known_queue(ctx, name)
    if not yes:
        click.confirm(f"Delete every pending job of {name}?", abort=True)
    removed = common.queue(ctx).purge(name)
    click.echo(f"purged {removed} pending job(s) from {name}")
