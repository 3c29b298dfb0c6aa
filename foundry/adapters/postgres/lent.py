"""The psycopg 3 connection under what a caller lends ``dispatch(..., connection=)``: a psycopg
``Connection`` itself, a SQLAlchemy ``Session`` (or ``scoped_session``) or ``Connection`` on
the ``postgresql+psycopg`` driver, or a Django database connection (``django.db.connection``,
``connections[alias]``) on Django's PostgreSQL backend with psycopg 3; for the
``AsyncDispatcher``, a psycopg ``AsyncConnection`` or a SQLAlchemy ``AsyncSession`` (or
``async_scoped_session``) or ``AsyncConnection``.

Neither SQLAlchemy nor Django is imported here unless the application has imported it: a
connection of theirs can only come from an application that did.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.errors import SchemaOutdated
from foundry.domain import ConfigurationError

Connection = TypeVar("Connection", psycopg.Connection[Any], psycopg.AsyncConnection[Any])

_TAKES = (
    "connection= takes a psycopg 3 Connection, a SQLAlchemy Session or Connection (driver "
    "postgresql+psycopg), or a Django connection (django.db.connection, PostgreSQL backend "
    "with psycopg 3)"
)


def psycopg_connection(lent: object) -> psycopg.Connection[Any]:
    """The psycopg 3 connection ``lent`` holds, in the transaction it has open (a SQLAlchemy
    session begins its transaction here if it had none); ``ConfigurationError`` naming what
    ``connection=`` takes for anything else."""
    if isinstance(lent, psycopg.Connection):
        return open_connection(lent)
    found = _from_sqlalchemy(lent) if "sqlalchemy" in sys.modules else None
    if found is None and "django" in sys.modules:
        found = _from_django(lent)
    if found is None:
        raise ConfigurationError(f"{_TAKES}; got {type(lent).__name__}")
    if not isinstance(found, psycopg.Connection):
        raise ConfigurationError(
            f"{_TAKES}; the {type(lent).__name__} given runs on {type(found).__module__}."
            f"{type(found).__name__} (use the psycopg 3 driver: postgresql+psycopg:// for "
            "SQLAlchemy, psycopg installed for Django)"
        )
    return open_connection(found)


_ASYNC_TAKES = (
    "connection= on the AsyncDispatcher takes a psycopg 3 AsyncConnection, or a SQLAlchemy "
    "AsyncSession or AsyncConnection (driver postgresql+psycopg)"
)


async def psycopg_async_connection(lent: object) -> psycopg.AsyncConnection[Any]:
    """The psycopg 3 ``AsyncConnection`` ``lent`` holds, in the transaction it has open (a
    SQLAlchemy ``AsyncSession`` begins its transaction here if it had none);
    ``ConfigurationError`` naming what ``connection=`` takes for anything else."""
    found: object = lent
    if "sqlalchemy.ext.asyncio" in sys.modules:
        found = await _from_sqlalchemy_async(lent)
    if isinstance(found, psycopg.AsyncConnection):
        return open_connection(found)
    if found is lent:
        raise ConfigurationError(f"{_ASYNC_TAKES}; got {type(lent).__name__}")
    raise ConfigurationError(
        f"{_ASYNC_TAKES}; the {type(lent).__name__} given runs on {type(found).__module__}."
        f"{type(found).__name__} (use postgresql+psycopg:// with create_async_engine)"
    )


async def _from_sqlalchemy_async(lent: object) -> object:
    """The driver connection of a SQLAlchemy asyncio session or connection, else ``lent``."""
    from sqlalchemy.ext.asyncio import (  # noqa: PLC0415 - loaded by the app already
        AsyncConnection,
        AsyncSession,
        async_scoped_session,
    )

    if isinstance(lent, async_scoped_session):
        lent = lent()
    if isinstance(lent, AsyncSession):
        lent = await lent.connection()  # the session's transaction's connection (begun if none)
    if isinstance(lent, AsyncConnection):
        raw = await lent.get_raw_connection()
        driver: object = raw.driver_connection
        return driver
    return lent


def open_connection(conn: Connection) -> Connection:
    """``conn``, unless its owner closed it: ``ConfigurationError`` then (a connection the
    server dropped is left to fail as a lost server does)."""
    if conn.closed and not conn.broken:
        raise ConfigurationError(
            "the connection given as connection= is closed: dispatch while it is open, inside "
            "the transaction the job belongs to"
        )
    return conn


@contextmanager
def in_foundrys_database(lent: Connection, settings: PostgresSettings) -> Iterator[None]:
    """Within: a ``SchemaOutdated`` on ``lent`` when it is a connection to another database
    than Foundry's (where migrating would not help) is a ``ConfigurationError`` naming both."""
    try:
        yield
    except SchemaOutdated as error:
        ours = conninfo_to_dict(settings.url).get("dbname")
        theirs = lent.info.dbname
        if ours is None or ours == theirs:
            raise
        raise ConfigurationError(
            f"the connection given as connection= is to database {theirs!r}, and Foundry's "
            f"queue is in database {ours!r} (DATABASE_URL): a job is written in your "
            "transaction only when both are in one database, so connect to that one (or "
            "point DATABASE_URL at yours and run foundry migrate there)"
        ) from error


def _from_sqlalchemy(lent: object) -> object | None:
    """The DBAPI connection of a SQLAlchemy session or connection, else ``None``."""
    from sqlalchemy.engine import Connection  # noqa: PLC0415 - loaded by the app already
    from sqlalchemy.orm import Session, scoped_session  # noqa: PLC0415

    if isinstance(lent, scoped_session):
        lent = lent()
    if isinstance(lent, Session):
        lent = lent.connection()  # the session's transaction's connection (begun if none)
    if isinstance(lent, Connection):
        return lent.connection.driver_connection
    return None


def _from_django(lent: object) -> object | None:
    """The database connection of a Django connection wrapper (connected now), else
    ``None``."""
    from django.db.backends.base.base import BaseDatabaseWrapper  # noqa: PLC0415
    from django.utils.connection import ConnectionProxy  # noqa: PLC0415

    if isinstance(lent, ConnectionProxy):
        lent = lent._connections[lent._alias]
    if not isinstance(lent, BaseDatabaseWrapper):
        return None
    if lent.vendor != "postgresql":
        raise ConfigurationError(
            f"{_TAKES}; Django's database {lent.alias!r} is {lent.vendor}, not PostgreSQL"
        )
    lent.ensure_connection()
    raw: object = lent.connection
    return raw
