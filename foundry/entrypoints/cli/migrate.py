"""``foundry migrate``: create or upgrade Foundry's PostgreSQL schema."""

from __future__ import annotations

import click

from foundry.entrypoints.cli import common

MIGRATE_HELP = """Create or upgrade Foundry's tables in PostgreSQL (DATABASE_URL).

\b
Applies, in order and once each, every migration newer than the schema's version, inside
the schema DATABASE_SCHEMA names (foundry by default), in one transaction: a failure leaves
the schema as it was. Concurrent runs wait for each other. Workers refuse to start on a
schema older than their Foundry ("run foundry migrate"). --check only reports: exit 1 when
migrations are pending.
"""


@click.command(help=MIGRATE_HELP, epilog=common.EXIT_CODES_HELP)
@click.option("--check", "only_check", is_flag=True, help="Report pending migrations only.")
@click.pass_context
def migrate(ctx: click.Context, only_check: bool) -> None:
    """Apply Foundry's pending PostgreSQL migrations."""
    migrator = common.container(ctx).migrator()
    out = common.stdout()
    if only_check:
        current = migrator.current()
        pending = [m.label for m in migrator.migrations if m.version > current]
        if pending:
            common.abort(
                f"schema {migrator.schema!r} is at version {current}; pending: "
                f"{', '.join(pending)}: run foundry migrate"
            )
        out.print(f"schema {migrator.schema!r} is up to date (version {current})")
        return
    applied = migrator.migrate()
    if not applied:
        out.print(f"schema {migrator.schema!r} is up to date (version {migrator.latest})")
        return
    for migration in applied:
        out.print(f"applied {migration.label}")
    out.print(f"schema {migrator.schema!r} is at version {applied[-1].version}")
