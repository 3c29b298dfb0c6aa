"""The fault scenarios' ``Rig`` on a PostgreSQL queue: workers with ``QUEUE_DRIVER=postgres``.

Each scenario works in a schema of its own (``DATABASE_SCHEMA``), migrated before any worker
starts, so scenarios sharing a server never see each other's jobs.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect
from foundry.adapters.postgres.migrator import Migrator
from tests.faults.harness import Rig


class PostgresRig(Rig):
    """A ``Rig`` whose workers and producer reach PostgreSQL at ``database_url``."""

    def __init__(self, database_url: str, *, seed: int, queue: str = "faults") -> None:
        super().__init__(database_url, seed=seed, queue=queue)
        self.schema = self.prefix  # "ft" and hex digits: a valid schema name
        settings = PostgresSettings(url=database_url, schema=self.schema)
        Migrator(lambda: connect(settings), self.schema).migrate()

    def env(self, url: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a worker (or producer) reaching PostgreSQL at ``url``."""
        environ = super().env(url, **extra)
        environ.pop("REDIS_URL", None)
        return {
            **environ,
            "QUEUE_DRIVER": "postgres",
            "DATABASE_URL": url or self.redis_url,
            "DATABASE_SCHEMA": self.schema,
        }

    def drop_schema(self) -> None:
        """Remove the scenario's schema (its jobs) from the database."""
        with psycopg.connect(self.direct_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )


#: Builds a scenario's ``PostgresRig`` for a database URL (the ``make_pg_rig`` fixture).
MakePgRig = Callable[[str], PostgresRig]
