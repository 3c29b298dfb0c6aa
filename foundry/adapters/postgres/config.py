"""How to reach PostgreSQL: the adapters' settings, without importing psycopg (nothing here
needs the optional ``foundry[postgres]`` extra).

Only a process that uses PostgreSQL imports this module; the checks of the environment that
``Settings`` makes in every process are in ``names``.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from foundry.adapters.postgres.names import DEFAULT_SCHEMA, check_schema, check_url, mask_url
from foundry.domain import ConfigurationError


def _url(_: object, __: attrs.Attribute[str], value: str) -> None:
    try:
        check_url(value)
    except ValueError as error:
        raise ConfigurationError(f"DATABASE_URL {mask_url(value)!r}: {error}") from None


def _schema(_: object, __: attrs.Attribute[str], value: str) -> None:
    try:
        check_schema(value)
    except ValueError as error:
        raise ConfigurationError(f"DATABASE_SCHEMA {value!r}: {error}") from None


def _pool_size(_: object, __: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ConfigurationError(f"DATABASE_POOL_SIZE must be at least 1, got {value}")


@attrs.frozen
class PostgresSettings:
    """One PostgreSQL database and the schema Foundry keeps its tables in."""

    url: str = attrs.field(validator=_url, repr=mask_url)
    schema: str = attrs.field(default=DEFAULT_SCHEMA, validator=_schema)
    pool_size: int = attrs.field(default=10, validator=_pool_size)
    connect_timeout: timedelta = timedelta(seconds=5)
    application_name: str = "foundry"
    #: Whether psycopg prepares a statement on the server after its fifth run on a
    #: connection; ``False`` behind a pooler in transaction mode (pgbouncer before 1.21, or
    #: without ``max_prepared_statements``), where a connection's prepared statements are
    #: another session's.
    prepared_statements: bool = True

    @property
    def prepare_threshold(self) -> int | None:
        """psycopg's ``prepare_threshold`` for every connection Foundry opens (its default, 5,
        or ``None``: never prepare)."""
        return 5 if self.prepared_statements else None
