"""The self-check ``foundry check`` and ``foundry work`` run against PostgreSQL: the server's
version, the schema's version, and the privileges the role needs on Foundry's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import psycopg

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import TABLE_RIGHTS, connect, grant_statements
from foundry.adapters.postgres.errors import MissingPrivileges, SchemaOutdated
from foundry.adapters.postgres.migrator import Migrator

#: The oldest server the schema's functions run on (gen_random_uuid() is built in from 13).
MIN_VERSION = 130000

#: What a worker and a producer do to each table (the cache's, when used, beside them).
QUEUE_TABLES = (
    "jobs",
    "queues",
    "queue_totals",
    "dependencies",
    "unique_keys",
    "workers",
    "schedules",
    "waiters",
    "claim_tokens",
    "batches",
    "batch_callbacks",
    "batch_members",
)
QUEUE_SEQUENCES = ("job_seq", "job_fence")
CACHE_TABLES = ("cache_values", "cache_locks", "cache_tags", "cache_stats")


@attrs.frozen
class PostgresReport:
    """What the self-check found."""

    server_version: str
    schema: str
    #: ``None`` when the role may not look into the schema (then ``missing`` says so).
    schema_version: int | None
    latest: int
    role: str
    missing: tuple[str, ...] = ()


def inspect_postgres(
    settings: PostgresSettings,
    tables: Sequence[str] = QUEUE_TABLES,
    sequences: Sequence[str] = QUEUE_SEQUENCES,
) -> PostgresReport:
    """Read what the server says about itself, Foundry's schema and this role's rights on
    ``tables`` and ``sequences`` (those of the ports on PostgreSQL: see ``used_by``).

    Raises ``QueueUnavailable`` when it cannot connect; never raises for what it finds.
    """
    migrator = Migrator(lambda: connect(settings), settings.schema)
    with connect(settings) as conn:
        version, number, role = _one(
            conn,
            "SELECT current_setting('server_version'), "
            "current_setting('server_version_num')::integer, current_user",
        )
        (exists, usage) = _one(
            conn,
            "SELECT count(*) > 0, bool_or(has_schema_privilege(oid, 'USAGE')) "
            "FROM pg_namespace WHERE nspname = %s",
            [settings.schema],
        )
        current: int | None = None
        missing: tuple[str, ...] = ()
        if exists and not usage:
            missing = (f"USAGE on schema {settings.schema}",)
        else:
            current = migrator.version_on(conn)
            missing = _missing(conn, settings.schema, tables, sequences) if current else ()
    return PostgresReport(
        server_version=f"{version} ({number})",
        schema=settings.schema,
        schema_version=current,
        latest=migrator.latest,
        role=role,
        missing=missing if int(number) >= MIN_VERSION else (*missing, "server 13 or newer"),
    )


def used_by(*, queue: bool, cache: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tables and sequences whose rights matter when the queue and/or the cache live on
    PostgreSQL."""
    tables = (QUEUE_TABLES if queue else ()) + (CACHE_TABLES if cache else ())
    return tables, QUEUE_SEQUENCES if queue else ()


def require_usable(report: PostgresReport) -> PostgresReport:
    """The report, if a worker can run on it; else ``SchemaOutdated`` ("run foundry migrate")
    or ``MissingPrivileges`` (with the GRANT that fixes it)."""
    if report.missing:
        raise MissingPrivileges(
            f"the role {report.role!r} lacks {', '.join(report.missing)}: {grants(report)}"
        )
    if report.schema_version is not None and report.schema_version < report.latest:
        found = (
            "is not there"
            if report.schema_version == 0
            else f"is at version {report.schema_version}"
        )
        raise SchemaOutdated(
            f"Foundry's PostgreSQL schema {report.schema!r} {found}, this Foundry needs "
            f"version {report.latest}: run foundry migrate"
        )
    return report


def grants(report: PostgresReport) -> str:
    """The statements that give ``report.role`` what Foundry needs in its schema."""
    return grant_statements(report.schema, report.role)


def _missing(
    conn: psycopg.Connection[Any], schema: str, tables: Sequence[str], sequences: Sequence[str]
) -> tuple[str, ...]:
    found = []
    for table in tables:
        name = f'"{schema}".{table}'
        (exists,) = _one(conn, "SELECT to_regclass(%s) IS NOT NULL", [name])
        if exists and not _one(conn, "SELECT has_table_privilege(%s, %s)", [name, TABLE_RIGHTS])[0]:
            found.append(f"{TABLE_RIGHTS} on {schema}.{table}")
    for sequence in sequences:
        name = f'"{schema}".{sequence}'
        if not _one(conn, "SELECT has_sequence_privilege(%s, 'USAGE')", [name])[0]:
            found.append(f"USAGE on sequence {schema}.{sequence}")
    return tuple(found)


def _one(
    conn: psycopg.Connection[Any], query: str, params: Sequence[object] = ()
) -> tuple[Any, ...]:
    row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return tuple(row)
