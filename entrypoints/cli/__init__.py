"""The ``foundry`` command: workers, dispatching, inspection and the demo."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from entrypoints.cli.check import check
from entrypoints.cli.common import EXIT_CODES_HELP, FoundryGroup
from entrypoints.cli.demo import demo
from entrypoints.cli.enqueue import enqueue
from entrypoints.cli.failed import failed
from entrypoints.cli.queues import queue_group
from entrypoints.cli.stats import stats
from entrypoints.cli.work import work
from entrypoints.container import build_container
from entrypoints.logging import LEVELS, configure_logging
from entrypoints.settings import Settings


def _version() -> str:
    try:
        return version("foundry")
    except PackageNotFoundError:
        return "0+unknown"


@click.group(cls=FoundryGroup, epilog=EXIT_CODES_HELP)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="FOUNDRY_LOG_LEVEL",
    help="Least severe log level written to stderr.",
)
@click.version_option(_version(), prog_name="foundry")
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """Foundry: a job queue and cache with a prefork worker pool.

    Configuration comes from the environment (REDIS_URL, QUEUE_DRIVER, ...; see the README
    or `foundry check`).
    """
    if ctx.obj is None:  # tests pass their own container through CliRunner(obj=...)
        configure_logging(log_level)
        ctx.obj = build_container(Settings.from_env())


for command in (work, enqueue, stats, failed, queue_group, check, demo):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="foundry")
