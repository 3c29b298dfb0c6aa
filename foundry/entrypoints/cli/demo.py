"""``foundry demo``: enqueue a mix of jobs, drain them on the prefork pool, report."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta

import click
from click.core import ParameterSource
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import PoolConfig
from foundry.entrypoints.cli import common
from foundry.entrypoints.cli.pooled import build_pool
from foundry.entrypoints.demo.app import DEMO_QUEUE, registry
from foundry.entrypoints.demo.app import flaky as flaky_handler
from foundry.entrypoints.demo.plan import Planned, plan
from foundry.entrypoints.demo.summary import Accounting, account, children_table, summary_table
from foundry.entrypoints.demo.tally import Tally
from foundry.entrypoints.logging import LOGGING_CONFIGURED, configure_logging


def _enqueue(dispatcher: Dispatcher, planned: list[Planned]) -> list[str]:
    now = [(item.target, item.payload) for item in planned if item.delay is None]
    ids = dispatcher.dispatch_many(now)
    later = [item for item in planned if item.delay is not None]
    ids += [dispatcher.dispatch(item.target, item.payload, delay=item.delay) for item in later]
    return ids


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]demo[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=common.stderr(),
        auto_refresh=False,  # a refresh thread must not exist when the pool forks
    )


def _report(
    tally: Tally, jobs: int, elapsed_s: float, accounting: Accounting, backend: str
) -> None:
    out = common.stdout()
    out.print(summary_table(tally, jobs, elapsed_s, accounting, backend))
    out.print(children_table(tally))
    if not accounting.ok:
        listed = ", ".join(accounting.unexpected[:10])
        common.abort(
            f"{len(accounting.unexpected)} job(s) not accounted for: {listed}; "
            "inspect them with `foundry failed list --queue demo` and `foundry stats`"
        )
    out.print(f"[green]every job accounted for[/]: {jobs} enqueued, {jobs} finished")


def _announce(ctx: click.Context, planned: list[Planned]) -> None:
    """Say before the run which jobs fail on purpose; unless a log level was asked for, log
    only errors during it (the summary counts the intended retries)."""
    flaky = [item for item in planned if item.target is flaky_handler]
    retries = sum(item.payload["failures"] for item in flaky)
    quiet = ctx.meta.get(LOGGING_CONFIGURED) and (
        ctx.find_root().get_parameter_source("log_level") is ParameterSource.DEFAULT
    )
    shown = "; only errors are logged during the run (--log-level INFO shows each retry)"
    common.stderr().print(
        f"note: {len(flaky)} job(s) fail on purpose and succeed on retry ({retries} retried "
        "attempts in all), and one fails for good (PermanentFailure: its ERROR line is "
        "expected); the summary counts them"
        f"{shown if quiet else ''}",
        soft_wrap=True,
    )
    if quiet:
        configure_logging("ERROR")


@click.command(epilog=common.EXIT_CODES_HELP)
@click.option("--jobs", type=click.IntRange(4, 100_000), default=200, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True)
@click.pass_context
def demo(ctx: click.Context, jobs: int, concurrency: int) -> None:
    """Enqueue demo jobs (--jobs), run them on the prefork pool, and account for every one.

    CPU-bound jobs (prime counting, hash chains), a few that fail then succeed on retry, a
    few delayed, and one that always fails for good. On an in-process memory queue unless
    the environment configures another backend (REDIS_URL, or QUEUE_DRIVER=redis|postgres):
    then in its queue "demo".
    """
    box = common.container(ctx)
    port = common.queue(ctx)
    if port.stats(DEMO_QUEUE).paused:
        common.abort(f"queue {DEMO_QUEUE} is paused; run `foundry queue resume {DEMO_QUEUE}` first")
    config = PoolConfig(
        queues=(DEMO_QUEUE,),
        concurrency=concurrency,
        lease=common.settings(ctx).queue_timeout,
        burst=True,
        grace=timedelta(seconds=5),
        # Delayed jobs and retries become due while the pool waits in claim; a short wait
        # picks them up promptly (the demo's queue is private, so polling costs nothing).
        idle_wait=timedelta(milliseconds=50),
    )
    with tempfile.TemporaryDirectory(prefix="foundry-demo-") as ledger:
        planned = plan(jobs, ledger)
        _announce(ctx, planned)
        ids = _enqueue(Dispatcher(port, registry, box.clock()), planned)
        with _progress() as progress:
            task = progress.add_task("demo", total=len(ids))
            tally = Tally(progress, task, ours=frozenset(ids))
            started = time.monotonic()
            code = build_pool(ctx, registry, config, observer=tally).run()
            elapsed = time.monotonic() - started
            progress.refresh()
    backend = common.settings(ctx).queue_driver.value
    _report(tally, len(ids), elapsed, account(port, ids, DEMO_QUEUE), backend)
    if code:
        raise SystemExit(code)
