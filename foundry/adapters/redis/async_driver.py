"""The two things the asyncio pipe takes from redis-py that redis-py does not publish: the
transport under a connected connection, and the parser that turns an error reply into
redis-py's exception. Both are read here only, and ``tests/redis/test_async_driver.py`` checks
them against the installed redis-py, so a release that moves them fails there, by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis
from redis._parsers import BaseParser
from redis.exceptions import ResponseError

from foundry.domain import ConfigurationError

#: An error reply's text as redis-py's exception (``ReadOnlyError`` for ``READONLY ...``).
parse_error: Callable[[str], ResponseError] = BaseParser.parse_error


def transport_of(connection: Any) -> asyncio.Transport:
    """The transport of a connected ``redis.asyncio`` connection (it keeps it behind its
    private stream writer; ``ConfigurationError`` if this redis-py release keeps it
    elsewhere)."""
    transport = getattr(getattr(connection, "_writer", None), "transport", None)
    if transport is None or not hasattr(transport, "set_protocol"):
        raise ConfigurationError(
            f"redis-py {redis.__version__} no longer shows its asyncio connection's transport, "
            "which Foundry's asyncio queue reads: install the redis-py release Foundry was "
            "tested with (the sync queue does not need it)"
        )
    typed: asyncio.Transport = transport
    return typed
