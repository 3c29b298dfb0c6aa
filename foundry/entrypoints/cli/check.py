"""``foundry check``: is the configuration valid, and is each backend usable?"""

from __future__ import annotations

import click
from rich.table import Table

from foundry.adapters.redis.health import RedisReport, fixes
from foundry.domain import QueueBroken
from foundry.entrypoints.cli import common
from foundry.entrypoints.cli.selfcheck import self_check
from foundry.entrypoints.overview import read_queues
from foundry.entrypoints.settings import Settings


def settings_table(settings: Settings) -> Table:
    """Every variable with the value in force (the password hidden)."""
    table = Table(title="Configuration")
    table.add_column("variable")
    table.add_column("value", overflow="fold")
    for name, value in settings.describe().items():
        table.add_row(name, value)
    return table


def report_table(reports: dict[str, RedisReport]) -> Table:
    """What each Redis said about itself."""
    table = Table(title="Redis self-check")
    columns = ("used by", "topology", "version", "maxmemory-policy", "appendonly", "RDB save")
    for column in columns:
        table.add_column(column, overflow="fold")
    for user, report in reports.items():
        aof = "yes" if report.aof_enabled else "no"
        table.add_row(
            user, report.topology, report.version, report.maxmemory_policy, aof, report.rdb_save
        )
    return table


def _postgres(ctx: click.Context) -> None:
    """The PostgreSQL self-check's table; an old schema or missing privileges exit 2."""
    check = common.container(ctx).postgres_check()
    if check is None:
        return
    from foundry.adapters.postgres.health import require_usable  # noqa: PLC0415

    report = check()
    table = Table(title="PostgreSQL self-check")
    for column in ("server", "schema", "schema version", "role", "privileges"):
        table.add_column(column, overflow="fold")
    rights = "missing: " + ", ".join(report.missing) if report.missing else "ok"
    shown = "?" if report.schema_version is None else report.schema_version
    version = f"{shown} (this Foundry: {report.latest})"
    table.add_row(report.server_version, report.schema, version, report.role, rights)
    common.stdout().print(table)
    require_usable(report)


def _reports(ctx: click.Context) -> dict[str, RedisReport]:
    box = common.container(ctx)
    reports: dict[str, RedisReport] = {}
    common.queue(ctx)
    box.cache()
    for what, check in (("queue", box.queue_check()), ("cache", box.cache_check())):
        if check is not None:
            reports[what] = self_check(what, check)
    return reports


def _broken_queues(ctx: click.Context) -> list[QueueBroken]:
    """Every known queue whose data the backend refuses to work on."""
    port = common.queue(ctx)
    if common.private_memory_queue(ctx):
        return []
    return read_queues(port).broken


@click.command(epilog=common.EXIT_CODES_HELP)
@click.option("--strict", is_flag=True, help="Exit 1 when the self-check has warnings.")
@click.pass_context
def check(ctx: click.Context, strict: bool) -> None:
    """Validate the configuration and self-check every configured backend.

    For PostgreSQL: the server's version, the schema's version (older than this Foundry's:
    run foundry migrate) and the role's privileges on Foundry's tables. For Redis: version
    (7 or newer required), eviction policy (must be noeviction, or jobs, and the cache's
    held locks and effect records, can be silently evicted), persistence (AOF recommended),
    the topology (role, replicas, the Sentinel; behind Sentinel: a replica and
    min-replicas-to-write), and the queue's scripts load.
    """
    out = common.stdout()
    out.print(settings_table(common.settings(ctx)))
    _postgres(ctx)
    reports = _reports(ctx)
    if reports:
        out.print(report_table(reports))
    warnings = sorted({warning for report in reports.values() for warning in report.warnings})
    for warning in warnings:
        common.stderr().print(f"[bold yellow]warning:[/] {common.escape(warning)}", soft_wrap=True)
    broken = _broken_queues(ctx)
    if broken:
        common.abort("; ".join(common.escape(str(error)) for error in broken))
    if strict and warnings:
        to_set = sorted({fix for report in reports.values() for fix in fixes(report)})
        common.abort(f"--strict and {len(warnings)} warning(s): set {'; '.join(to_set)}")
    noted = f" ({len(warnings)} warning(s) above)" if warnings else ""
    out.print(f"[green]ok[/]: configuration valid, backends reachable{noted}")
