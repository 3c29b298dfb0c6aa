"""The asyncio twins of ``tls``'s checked TLS connections, in a module of their own so that a
sync worker never imports redis-py's asyncio client."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import redis.asyncio

from foundry.adapters.redis.tls import PLAIN_REPLY, PROBE_S, failed


async def answers_without_tls_async(host: str, port: int, timeout: float | None) -> bool:
    """``answers_without_tls``, awaited."""
    try:
        async with asyncio.timeout(timeout or PROBE_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"PING\r\n")
                return await reader.read(1) in PLAIN_REPLY
            finally:
                writer.close()
    except OSError:  # TimeoutError too
        return False


class AsyncChecked:
    """What an asyncio TLS connection class adds: a failed handshake said as
    ``TlsNotSpoken`` or ``TlsHandshakeFailed`` (the handshake runs in the TCP connect: a
    connect that times out is asked the plain ``PING`` too, which a server that cannot be
    reached does not answer)."""

    host: str
    port: int
    socket_connect_timeout: float | None

    async def _connect(self) -> None:
        try:
            await super()._connect()  # type: ignore[misc]
        except ssl.SSLCertVerificationError:
            raise
        except (TimeoutError, ssl.SSLError) as error:
            host, port = self.host, self.port
            plain = await answers_without_tls_async(host, port, self.socket_connect_timeout)
            raise failed(host, port, error, plain) from error


class AsyncTlsConnection(AsyncChecked, redis.asyncio.SSLConnection):
    """redis-py's asyncio TLS connection, its failed handshake said."""


def checked_class(kind: type[Any]) -> type[Any]:
    """``tls.checked_class`` for redis-py's asyncio TLS connection."""
    return AsyncTlsConnection if kind is redis.asyncio.SSLConnection else kind
