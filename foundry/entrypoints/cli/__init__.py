"""The ``foundry`` command: workers, dispatching, inspection and the demo.

Each command's module is imported only when that command runs (or ``--help`` lists them), so
``foundry work`` starts without the tables, progress bars and admin code of the others.
"""

from __future__ import annotations

from functools import partial

import click

from foundry.entrypoints.cli.common import EXIT_CODES_HELP, FoundryGroup
from foundry.entrypoints.container import build_container, close_resources
from foundry.entrypoints.logging import LEVELS, LOGGING_CONFIGURED, configure_logging
from foundry.entrypoints.settings import Settings

COMMANDS = {
    "work": "foundry.entrypoints.cli.work:work",
    "enqueue": "foundry.entrypoints.cli.enqueue:enqueue",
    "stats": "foundry.entrypoints.cli.stats:stats",
    "failed": "foundry.entrypoints.cli.failed:failed",
    "job": "foundry.entrypoints.cli.jobs:job",
    "batch": "foundry.entrypoints.cli.batches:batch",
    "queue": "foundry.entrypoints.cli.queues:queue_group",
    "schedules": "foundry.entrypoints.cli.schedules:schedules_group",
    "check": "foundry.entrypoints.cli.check:check",
    "migrate": "foundry.entrypoints.cli.migrate:migrate",
    "demo": "foundry.entrypoints.cli.demo:demo",
    "metrics": "foundry.entrypoints.cli.metrics:metrics",
    "dashboard": "foundry.entrypoints.cli.dashboard:dashboard",
}
#: Names also accepted, not listed by ``--help``.
ALIASES = {"schedule": "schedules"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("foundry")
    except PackageNotFoundError:
        return "0+unknown"


def _print_version(ctx: click.Context, _: click.Parameter, wanted: bool) -> None:
    # Looked up only when asked for: reading the installed metadata costs every start ~1 ms.
    if wanted and not ctx.resilient_parsing:
        click.echo(f"foundry, version {_version()}")
        ctx.exit()


@click.group(cls=FoundryGroup, lazy_commands=COMMANDS, aliases=ALIASES, epilog=EXIT_CODES_HELP)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="FOUNDRY_LOG_LEVEL",
    help="Least severe log level written to stderr.",
)
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """Foundry: a job queue and cache with a prefork worker pool.

    Configuration comes from the environment (REDIS_URL, QUEUE_DRIVER, ...; see the README
    or `foundry check`).
    """
    if ctx.obj is None:  # tests pass their own container through CliRunner(obj=...)
        configure_logging(log_level)
        ctx.meta[LOGGING_CONFIGURED] = True
        ctx.obj = build_container(Settings.from_env())
        ctx.call_on_close(partial(close_resources, ctx.obj))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="foundry")
