"""``foundry check``: is the configuration valid, and is each backend usable?"""

from __future__ import annotations

import click
import redis
from rich.table import Table

from domain import QueueUnavailable
from entrypoints.cli import common
from entrypoints.settings import Driver, Settings


def settings_table(settings: Settings) -> Table:
    """Every variable with the value in force (the password hidden)."""
    table = Table(title="Configuration")
    table.add_column("variable")
    table.add_column("value", overflow="fold")
    for name, value in settings.describe().items():
        table.add_row(name, value)
    return table


def _check_redis(client: redis.Redis, what: str) -> list[str]:
    """Problems with one Redis (empty when it is usable)."""
    try:
        info = client.info("server")
    except redis.RedisError as error:
        raise QueueUnavailable(
            f"{what}: cannot reach Redis ({error}); check REDIS_URL and that the server runs"
        ) from error
    version = str(info.get("redis_version", "0"))
    if int(version.split(".", maxsplit=1)[0]) < 7:
        return [f"{what}: Redis {version} is too old; Foundry needs Redis 7 or newer"]
    return []


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration and self-check every configured backend."""
    box = common.container(ctx)
    settings = common.settings(ctx)
    out = common.stdout()
    out.print(settings_table(settings))
    problems: list[str] = []
    common.queue(ctx)
    if settings.queue_driver is Driver.REDIS:
        problems += _check_redis(box.queue_client(), "queue")
    if settings.cache_driver is Driver.REDIS:
        box.cache()
        problems += _check_redis(box.cache_client(), "cache")
    for problem in problems:
        common.stderr().print(f"[bold red]problem:[/] {common.escape(problem)}")
    if problems:
        raise SystemExit(int(common.Exit.FAILED))
    out.print("[green]ok[/]: configuration valid, backends reachable")
