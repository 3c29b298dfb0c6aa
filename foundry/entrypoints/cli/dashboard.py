"""``foundry dashboard``: the web dashboard and its JSON API."""

from __future__ import annotations

import os
from datetime import timedelta

import click

from foundry.entrypoints.cli import common
from foundry.entrypoints.extras import require


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--refresh",
    type=click.FloatRange(1, 3600),
    default=5.0,
    show_default=True,
    help="Seconds between readings of the queues (pages refresh at this pace while visible).",
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, refresh: float) -> None:
    """Serve the dashboard: queues, workers, jobs, dead letters and schedules, with a JSON API.

    Binds 127.0.0.1 unless told otherwise; any other address needs FOUNDRY_DASHBOARD_TOKEN
    (browsers ask for it as the password). Needs foundry[dashboard].
    """
    require("dashboard", "foundry dashboard", "starlette", "jinja2", "uvicorn")
    from foundry.entrypoints.dashboard.serve import serve  # noqa: PLC0415

    token = os.environ.get("FOUNDRY_DASHBOARD_TOKEN") or None
    common.require_shared_queue(ctx, "the dashboard")
    box = common.container(ctx)
    serve(
        common.queue(ctx),
        common.workers(ctx),
        common.schedules(ctx),
        box.clock(),
        host=host,
        port=port,
        token=token,
        every=timedelta(seconds=refresh),
        backend=common.settings(ctx).queue_driver.value,
        announce=lambda url: common.stderr().print(f"dashboard on {url}"),
        batches=common.batches(ctx),
    )
