"""``foundry work``: run a prefork pool of workers."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from foundry.application.pool import PoolConfig
from foundry.entrypoints.apps import app_queues, load_app
from foundry.entrypoints.cli import common
from foundry.entrypoints.cli.pooled import build_pool
from foundry.entrypoints.cli.selfcheck import log_report, self_check, when_reachable
from foundry.entrypoints.extras import require
from foundry.entrypoints.settings import Driver

if TYPE_CHECKING:
    from foundry.application.registry import JobRegistry
    from foundry.application.schedules.scheduler import Scheduler

#: The default --prefetch-window (ms): claims hold jobs ahead unstarted.
HOLD_AHEAD_MS = 20.0

WORK_HELP = """Run handlers from --app in a prefork pool until stopped.

\b
Ctrl-C, SIGTERM or SIGHUP stops claiming and lets running jobs finish within --grace, then
kills and releases the rest (their attempts are not spent); a second Ctrl-C or SIGTERM, or
a SIGQUIT (Ctrl-\\), stops at once.
--burst exits once the queues are empty. The app's periodic schedules are fired by every
worker (any number may run: each tick is enqueued once) unless --no-scheduler or --burst.
"""


@click.command(help=WORK_HELP, epilog=common.EXIT_CODES_HELP)
@click.option(
    "--app",
    envvar="FOUNDRY_APP",
    required=True,
    help=(
        "The handlers, as module:registry (env FOUNDRY_APP), "
        "e.g. foundry.entrypoints.demo.app:registry."
    ),
)
@click.option("--queues", default=None, help="Queues to serve, in order [default: the app's].")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=os.cpu_count() or 2,
    show_default="CPU count",
    help="Child processes.",
)
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), default=None)
@click.option("--max-memory-per-child", type=click.IntRange(min=1), default=None, help="MB of RSS.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running jobs get to finish at shutdown.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(0, 10_000),
    default=0,
    show_default=True,
    help="Jobs claimed ahead and held (leased) by the parent: fewer round trips per job, "
    "but other workers cannot take them. Released at shutdown.",
)
@click.option(
    "--prefetch-window",
    type=click.FloatRange(min=0),
    default=HOLD_AHEAD_MS,
    show_default=True,
    help="Adaptive prefetch for short jobs, in ms: hold as many jobs as the children finish "
    "in this window (at most 64), so a child's next job waits for it. A held job spends its "
    "attempt only once it starts (a crashed worker gives back the attempts of the jobs it "
    "held unstarted). 0 gives jobs to idle children only.",
)
@click.option(
    "--child-nice",
    type=click.IntRange(0, 19),
    default=0,
    show_default=True,
    help="Added to the children's nice value, so the parent (work hand-out, lease renewal, "
    "fencing) wins the CPU over them; they then also yield to every other process on the "
    "machine. 0: the parent's priority.",
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    envvar="FOUNDRY_METRICS_PORT",
    help="Serve this pool's Prometheus metrics on http://HOST:PORT/metrics "
    "(needs foundry[metrics]).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address --metrics-port binds (0.0.0.0 for every interface).",
)
@click.option(
    "--wait-for-backend",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to keep trying an unreachable Redis or PostgreSQL at startup (a worker "
    "started with its backend), before exiting 3. 0 exits at once.",
)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Fire the app's periodic schedules from this worker (never with --burst: its ticks "
    "would keep the drain from ending).",
)
@click.pass_context
def work(
    ctx: click.Context,
    *,
    app: str,
    queues: str | None,
    concurrency: int,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    grace: float,
    prefetch: int,
    prefetch_window: float,
    child_nice: int,
    burst: bool,
    metrics_port: int | None,
    metrics_host: str,
    wait_for_backend: float,
    scheduler: bool,
) -> None:
    """Run a worker pool."""
    if metrics_port is not None:
        require("metrics", "--metrics-port", "prometheus_client")
    box = common.container(ctx)
    registry = load_app(app, box)
    config = PoolConfig(
        queues=common.queue_names(queues) if queues else app_queues(registry),
        concurrency=concurrency,
        lease=box.queue_timing().lease,
        max_tasks_per_child=max_tasks_per_child,
        max_memory_per_child_mb=max_memory_per_child,
        grace=timedelta(seconds=grace),
        burst=burst,
        prefetch=prefetch,
        prefetch_window=timedelta(milliseconds=prefetch_window),
        child_nice=child_nice,
    )
    patience = timedelta(seconds=wait_for_backend)
    postgres = box.postgres_check()
    if postgres is not None:
        from foundry.adapters.postgres.health import require_usable  # noqa: PLC0415

        # An old schema, missing privileges: exit 2, with the fix.
        require_usable(when_reachable(postgres, patience))
    check = box.queue_check()
    if check is not None:
        # A Redis unreachable for longer or too old stops us here, not later; what it says is
        # logged once.
        log_report(when_reachable(lambda: self_check("queue", check), patience))
    if common.private_memory_queue(ctx):
        common.stderr().print(
            "note: QUEUE_DRIVER is memory; this worker sees only jobs its app enqueues itself"
        )
    elif common.settings(ctx).cache_driver is Driver.MEMORY:
        common.stderr().print(
            "note: CACHE_DRIVER is memory, so each child of this worker has a cache of its "
            "own: cache locks, remember and idempotent effects do not reach the other "
            "processes; set CACHE_DRIVER=redis or postgres to share one"
        )
    metrics = None
    if metrics_port is not None:
        from foundry.entrypoints.metrics.serve import pool_metrics  # noqa: PLC0415

        metrics = pool_metrics(registry.names(), concurrency, metrics_host, metrics_port)
    pool = build_pool(
        ctx,
        registry,
        config,
        observer=metrics.observer if metrics else None,
        timers=_schedulers(ctx, registry) if scheduler and not burst else [],
    )
    try:
        code = pool.run()
    finally:
        if metrics is not None:
            metrics.server.stop()
    if code:
        raise SystemExit(code)


def _schedulers(ctx: click.Context, registry: JobRegistry) -> list[Scheduler]:
    """The scheduler of the app's periodic schedules; none when it declares none (its module
    and the schedule port's types are then never imported)."""
    if not registry.schedules():
        return []
    from foundry.application.schedules.scheduler import Scheduler  # noqa: PLC0415

    return [Scheduler(common.schedules(ctx), registry)]
