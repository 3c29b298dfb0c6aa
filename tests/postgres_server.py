"""Throwaway PostgreSQL databases for tests, on the machine's server.

The server at ``FOUNDRY_TEST_POSTGRES_URL`` (by default ``postgresql://postgres@127.0.0.1:5432/
postgres``: trust auth on loopback, as ``./dev test`` sets it up) is only used to create and
drop databases named ``foundry_test_<random>``; a test never touches any other database.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "FOUNDRY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

#: Every database (and role) the tests make starts so: ``drop`` refuses any other name.
STEM = "foundry_test_"


def unique_name(stem: str = STEM) -> str:
    """A database, schema or role name no other test uses."""
    return f"{stem}{uuid.uuid4().hex[:12]}"


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise RuntimeError(
            f"no PostgreSQL server at {ADMIN_URL} ({error}); run ./dev test (it installs "
            "postgresql) or set FOUNDRY_TEST_POSTGRES_URL to a server whose user may create "
            "databases"
        ) from error


class ThrowawayDatabase:
    """A database this test run created and drops again."""

    def __init__(self) -> None:
        self.name = unique_name()

    def create(self) -> ThrowawayDatabase:
        """Create the (empty) database."""
        with _admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The database's URL (as the admin user, or as ``user``)."""
        parts = urlsplit(ADMIN_URL)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rpartition("@")[2]
            netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
        return urlunsplit(parts._replace(netloc=netloc, path=f"/{self.name}"))

    def drop(self) -> None:
        """Drop the database, ending any session still connected to it."""
        assert self.name.startswith(STEM), f"refusing to drop {self.name!r}"
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


class ThrowawayRole:
    """A login role (trust auth on loopback: no password) this test created and drops again;
    it holds no privileges but those the test grants in ``database_url``'s database."""

    def __init__(self, database_url: str) -> None:
        self.name = unique_name()
        self._database_url = database_url

    def create(self) -> ThrowawayRole:
        """Create the role."""
        with _admin() as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(self.name)))
        return self

    def url(self) -> str:
        """``database_url`` as this role."""
        parts = urlsplit(self._database_url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{self.name}@{host}"))

    def drop(self) -> None:
        """Revoke what it was granted, end its sessions, drop it."""
        assert self.name.startswith(STEM), f"refusing to drop {self.name!r}"
        role = sql.Identifier(self.name)
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [self.name],
            )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        with _admin() as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
