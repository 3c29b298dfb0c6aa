"""A database URL and Foundry's schema name: their checks, without ``PostgresSettings``.

``Settings`` reads ``DATABASE_URL`` and ``DATABASE_SCHEMA`` in every process; only one that uses
PostgreSQL builds the settings class (an attrs class costs its methods' compilation at import).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

#: The schema Foundry's tables live in unless ``DATABASE_SCHEMA`` says otherwise.
DEFAULT_SCHEMA = "foundry"

# Lower case only: the name is quoted into SQL, and an unquoted mixed-case name in a user's
# own psql session would fold to another schema. At most 49 characters: the schema names its
# NOTIFY channels, foundry_<schema>_ended the longest, and a channel holds at most 63 bytes.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,48}")


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
        raise ValueError("use 1-49 lower-case letters, digits or '_', not starting with a digit")
