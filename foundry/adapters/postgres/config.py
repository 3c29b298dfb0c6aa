"""How to reach PostgreSQL: settings and URL checks, without importing psycopg.

``Settings`` reads these from the environment in every process, the ones that never use
PostgreSQL included, so nothing here needs the optional ``foundry[postgres]`` extra.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import attrs

from foundry.domain import ConfigurationError

#: The schema Foundry's tables live in unless ``DATABASE_SCHEMA`` says otherwise.
DEFAULT_SCHEMA = "foundry"

# Lower case only: the name is quoted into SQL, and an unquoted mixed-case name in a user's
# own psql session would fold to another schema.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is a ``postgresql://`` (or ``postgres://``) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("use postgresql://user:password@host:5432/database")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")


def mask_url(url: str) -> str:
    """``url`` with the password in its user info replaced by stars."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_schema(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a schema name Foundry can quote safely."""
    if _SCHEMA.fullmatch(name) is None:
        raise ValueError("use 1-63 lower-case letters, digits or '_', not starting with a digit")


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
