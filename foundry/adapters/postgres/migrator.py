"""The migration runner: Foundry's schema, created and upgraded by versioned SQL files.

``migrate()`` applies, in one transaction under an advisory lock (so concurrent runs wait for
each other and apply each file once), every file newer than the schema's version, recording
each in ``schema_version``. ``require_current()`` is what a worker runs before it starts: a
schema older than this Foundry's files is refused with "run foundry migrate"; a newer one is
accepted (migrations only add, so a worker of the previous release keeps running during a
rolling deploy).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from importlib.abc import Traversable
from typing import Any

import attrs
import psycopg
from psycopg import sql

from foundry.adapters.postgres.errors import MigrationFailed, MissingPrivileges, SchemaOutdated
from foundry.adapters.postgres.names import check_schema

__all__ = ["Migration", "MigrationFailed", "Migrator", "SchemaOutdated", "load_migrations"]

log = logging.getLogger("foundry.postgres")

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@attrs.frozen
class Migration:
    """One SQL file: its version (the file's number), its name and its statements."""

    version: int = attrs.field(validator=attrs.validators.ge(1))
    name: str
    sql: str = attrs.field(repr=False)

    @property
    def label(self) -> str:
        """``0001_queue``: how the file is named."""
        return f"{self.version:04d}_{self.name}"


def load_migrations(directory: Traversable | None = None) -> tuple[Migration, ...]:
    """Every ``NNNN_name.sql`` in ``directory`` (Foundry's own by default), by version.

    Raises ``ValueError`` for two files of one version or a gap in the numbering (a file
    lost in packaging would otherwise be skipped for good).
    """
    folder = directory or resources.files("foundry.adapters.postgres.migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is None:
            continue
        version = int(match[1])
        if version in found:
            raise ValueError(f"two migrations numbered {version:04d}: {entry.name}")
        found[version] = Migration(version, match[2], entry.read_text(encoding="utf-8"))
    ordered = tuple(found[version] for version in sorted(found))
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise ValueError(f"migration {expected:04d} is missing (found {migration.label})")
    return ordered


Connect = Callable[[], psycopg.Connection[Any]]


class Migrator:
    """Applies ``migrations`` to one schema of the database ``connect`` reaches."""

    def __init__(
        self, connect: Connect, schema: str, migrations: Sequence[Migration] | None = None
    ) -> None:
        check_schema(schema)
        self._connect = connect
        self.schema = schema
        self.migrations = tuple(migrations if migrations is not None else load_migrations())

    @property
    def latest(self) -> int:
        """The version the files bring the schema to."""
        return self.migrations[-1].version if self.migrations else 0

    def current(self) -> int:
        """The schema's version in the database: 0 when Foundry's schema is not there yet."""
        with self._connect() as conn:
            return self._version(conn)

    def version_on(self, conn: psycopg.Connection[Any]) -> int:
        """``current()`` over a connection the caller holds."""
        return self._version(conn)

    def migrate(self) -> list[Migration]:
        """Apply every file newer than the schema's version; the ones applied, in order.

        With none pending it writes nothing, so a role without the right to create (the
        workers' role, in every deploy) may run it. ``MissingPrivileges`` names the grant a
        role lacks.
        """
        with self._connect() as conn, self._privileges(conn):
            if self._version(conn) >= self.latest:
                return []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [self._lock])
                self._create_schema(conn)
                current = self._version(conn)
                applied = [m for m in self.migrations if m.version > current]
                for migration in applied:
                    self._apply(conn, migration)
        return applied

    def require_current(self) -> int:
        """The schema's version; raises ``SchemaOutdated`` when it is older than ``latest``."""
        current = self.current()
        if current < self.latest:
            found = "is not there" if current == 0 else f"is at version {current}"
            raise SchemaOutdated(
                f"Foundry's PostgreSQL schema {self.schema!r} {found}, this Foundry needs "
                f"version {self.latest}: run foundry migrate"
            )
        return current

    @property
    def _lock(self) -> str:
        return f"foundry.migrate.{self.schema}"

    @property
    def _schema(self) -> sql.Identifier:
        return sql.Identifier(self.schema)

    def _version(self, conn: psycopg.Connection[Any]) -> int:
        # The catalog, not to_regclass: that one needs USAGE on the schema.
        exists = conn.execute(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = 'schema_version')",
            [self.schema],
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        with self._privileges(conn, "read"):
            row = conn.execute(
                sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(
                    self._schema
                )
            ).fetchone()
        return int(row[0]) if row else 0

    def _create_schema(self, conn: psycopg.Connection[Any]) -> None:
        # Only when absent: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
        # when the schema is there (owned by this role, or made for it by an administrator).
        found = conn.execute("SELECT FROM pg_namespace WHERE nspname = %s", [self.schema])
        if found.fetchone() is None:
            with self._privileges(conn, "create schema"):
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(self._schema))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            ).format(self._schema)
        )

    @contextmanager
    def _privileges(
        self, conn: psycopg.Connection[Any], use: str = "create in schema"
    ) -> Iterator[None]:
        """Raise ``MissingPrivileges``, naming the grant, for a statement the role may not run."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as error:
            raise MissingPrivileges(
                _lacking(use, conn.info.user, conn.info.dbname, self.schema, error)
            ) from error

    def _apply(self, conn: psycopg.Connection[Any], migration: Migration) -> None:
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(self._schema))
        try:
            conn.execute(migration.sql.encode())
        except psycopg.errors.InsufficientPrivilege:
            raise
        except psycopg.Error as error:
            raise MigrationFailed(_failed(migration, self.schema, error)) from error
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version (version, name) VALUES (%s, %s)").format(
                self._schema
            ),
            [migration.version, migration.name],
        )
        log.info("applied migration %s to schema %s", migration.label, self.schema)


def _failed(migration: Migration, schema: str, error: psycopg.Error) -> str:
    reason = error.diag.message_primary or str(error).strip() or type(error).__name__
    message = (
        f"migration {migration.label} failed ({reason}); nothing was applied, schema "
        f"{schema!r} is as it was"
    )
    if error.sqlstate in _TAKEN:
        message += ": Foundry needs a schema of its own, set DATABASE_SCHEMA to another name"
    return message


#: SQLSTATEs of a name a migration creates that the schema already holds (duplicate table,
#: object, function, schema).
_TAKEN = frozenset({"42P07", "42710", "42723", "42P06"})


def _lacking(use: str, role: str, database: str, schema: str, error: psycopg.Error) -> str:
    reason = error.diag.message_primary or str(error)
    quoted, to = f'"{schema}"', f'"{role}"'
    if use == "read":
        return (
            f"the role {role!r} may not read Foundry's schema {schema!r} ({reason}): "
            f"GRANT USAGE ON SCHEMA {quoted} TO {to}; GRANT SELECT ON ALL TABLES IN SCHEMA "
            f"{quoted} TO {to}"
        )
    if use == "create schema":
        return (
            f"the role {role!r} may not create Foundry's schema {schema!r} ({reason}): run "
            f"foundry migrate as the database's owner, or GRANT CREATE ON DATABASE "
            f'"{database}" TO {to}, or have an administrator run CREATE SCHEMA {quoted} '
            f"AUTHORIZATION {to}"
        )
    return (
        f"the role {role!r} may not create or change Foundry's tables in schema {schema!r} "
        f"({reason}): run foundry migrate as the schema's owner, or have an administrator run "
        f"ALTER SCHEMA {quoted} OWNER TO {to}"
    )
