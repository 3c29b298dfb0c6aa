"""The asyncio twins of ``tls``'s checked TLS connections, in a module of their own so that a
sync worker never imports redis-py's asyncio client."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import redis.asyncio

from foundry.adapters.redis.tls import (
    PLAIN_REPLY,
    PROBE_S,
    TlsHandshakeFailed,
    TlsRefused,
    failed,
    refused_tls,
)


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
    """What an asyncio TLS connection class adds: the TCP connect first, then the handshake,
    so that only a failed handshake is said as ``TlsRefused``, ``TlsNotSpoken`` or
    ``TlsHandshakeFailed`` (and asked the plain ``PING``); a connect that fails is an outage
    as on a plain connection."""

    host: str
    port: int
    socket_connect_timeout: float | None
    ssl_context: Any
    _reader: asyncio.StreamReader | None
    _writer: asyncio.StreamWriter | None

    def _connection_arguments(self) -> dict[str, Any]:
        arguments = dict(super()._connection_arguments())  # type: ignore[misc]
        arguments.pop("ssl", None)  # the handshake follows the connect (_connect)
        return arguments

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[misc]
        writer = self._writer
        assert writer is not None
        try:
            async with asyncio.timeout(self.socket_connect_timeout):
                await writer.start_tls(self.ssl_context.get(), server_hostname=self.host)
        except BaseException as error:
            # Aborted and forgotten: a close would wait for the handshake's end, never to come.
            writer.transport.abort()
            self._reader = self._writer = None
            if isinstance(error, ssl.SSLCertVerificationError):
                raise
            if isinstance(error, TimeoutError | ssl.SSLError):
                raise await self._failed(error) from error
            raise

    async def _failed(self, error: BaseException) -> TlsHandshakeFailed | TlsRefused:
        """The error a failed handshake is: the server's refusal, or else whether the port
        answers a plain ``PING`` says."""
        host, port = self.host, self.port
        refusal = refused_tls(host, port, error)
        if refusal is not None:
            return refusal
        plain = await answers_without_tls_async(host, port, self.socket_connect_timeout)
        return failed(host, port, error, plain)

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        """redis-py's first commands; a refusal the server sent after the handshake read as
        ``TlsRefused``."""
        try:
            await super().on_connect_check_health(check_health)  # type: ignore[misc]
        except redis.ConnectionError as error:
            refusal = refused_tls(self.host, self.port, error)
            if refusal is None:
                raise
            raise refusal from error


class AsyncTlsConnection(AsyncChecked, redis.asyncio.SSLConnection):
    """redis-py's asyncio TLS connection, its failed handshake said."""


def checked_class(kind: type[Any]) -> type[Any]:
    """``tls.checked_class`` for redis-py's asyncio TLS connection."""
    return AsyncTlsConnection if kind is redis.asyncio.SSLConnection else kind
