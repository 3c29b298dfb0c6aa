"""TLS connections that tell a server without TLS from an outage: a ``rediss://`` URL naming a
port without TLS (a plain Redis reads the handshake as a command and waits for the rest) is a
setting to fix, said at once, not a server to wait for.

When a handshake fails (no answer in time, or a reply that is not TLS), the address is asked
a plain ``PING`` on a connection of its own: a Redis answer (``+PONG``, ``-NOAUTH``...) means
the server does not speak TLS there, ``TlsNotSpoken``, a configuration error no retry fixes;
anything else (no answer: a server paused, a network down) leaves ``TlsHandshakeFailed``, an
outage retried as any other. A certificate that does not verify is left as it is (a refusal
of its own). Every TLS connection Foundry opens is checked so: to one server, to a
Sentinel-managed master and to the sentinels, to a cluster's nodes, sync and asyncio (the
asyncio classes are in ``async_tls``: a sync worker never imports redis-py's asyncio client).
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any

import redis
from redis.sentinel import SentinelManagedSSLConnection

#: What a plain PING gets from a Redis (or Sentinel) that does not speak TLS: a simple
#: string or an error reply (``-NOAUTH``, ``-ERR``).
PLAIN_REPLY = (b"+", b"-")
#: How long the plain PING waits when the connection has no connect timeout (seconds).
PROBE_S = 2.0
#: ``not_spoken``'s text, found again in an error that carries it (a sentinel's answers).
_NOT_SPOKEN = re.compile(r"TLS handshake with (\S+):(\d+) failed: the server did not speak TLS")


class TlsHandshakeFailed(redis.ConnectionError):
    """The server accepted the connection but did not complete a TLS handshake (it may be
    down or paused: retried as an outage)."""


class TlsNotSpoken(TlsHandshakeFailed):
    """The server answered a plain ``PING`` where the TLS handshake failed: it does not speak
    TLS on that port (a configuration error, raised at once)."""


def not_spoken(host: str, port: int) -> str:
    """What ``TlsNotSpoken`` says: the problem and the fix."""
    return (
        f"TLS handshake with {host}:{port} failed: the server did not speak TLS on "
        f"{host}:{port} (it answers as a Redis without TLS); use redis:// for a server "
        "without TLS (redis+sentinel://, redis+cluster://), or name its TLS port (tls-port) "
        "in the rediss:// URL"
    )


def not_spoken_in(text: str) -> TlsNotSpoken | None:
    """The ``TlsNotSpoken`` that ``text`` (an error's, holding others') tells of, if any."""
    found = _NOT_SPOKEN.search(text)
    return None if found is None else TlsNotSpoken(not_spoken(found[1], int(found[2])))


def handshake_failure(host: str, port: int, error: BaseException) -> str:
    """What a failed TLS handshake with ``host:port`` says when the server may only be down:
    the cause and the fix."""
    why = "no answer in time" if isinstance(error, TimeoutError) else str(error) or "refused"
    return (
        f"TLS handshake with {host}:{port} failed ({why}): the server may not speak TLS on "
        "this port; use redis:// for a server without TLS, or name its TLS port (tls-port) "
        "in the rediss:// URL"
    )


def answers_without_tls(host: str, port: int, timeout: float | None) -> bool:
    """Whether ``host:port`` answers a plain ``PING`` as a Redis does."""
    try:
        with socket.create_connection((host, port), timeout=timeout or PROBE_S) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(1) in PLAIN_REPLY
    except OSError:
        return False


def failed(host: str, port: int, error: BaseException, plain: bool) -> TlsHandshakeFailed:
    """``TlsNotSpoken`` if the address answered a ``plain`` PING, else ``TlsHandshakeFailed``."""
    if plain:
        return TlsNotSpoken(not_spoken(host, port))
    return TlsHandshakeFailed(handshake_failure(host, port, error))


class Checked:
    """What a sync TLS connection class adds: a failed handshake said as ``TlsNotSpoken`` or
    ``TlsHandshakeFailed``."""

    host: str
    port: int
    socket_connect_timeout: float | None

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        try:
            return super()._wrap_socket_with_ssl(sock)  # type: ignore[misc]
        except ssl.SSLCertVerificationError:
            raise
        except (TimeoutError, ssl.SSLError) as error:
            plain = answers_without_tls(self.host, self.port, self.socket_connect_timeout)
            raise failed(self.host, self.port, error, plain) from error


class TlsConnection(Checked, redis.SSLConnection):
    """redis-py's TLS connection, its failed handshake said (see the module's docstring)."""


class SentinelTlsConnection(Checked, SentinelManagedSSLConnection):
    """redis-py's TLS connection to a Sentinel-managed master, its failed handshake said."""


def checked_class(kind: type[Any]) -> type[Any]:
    """The connection class to use for ``kind``: its checked twin for redis-py's sync TLS
    connections (``async_tls.checked_class`` for the asyncio ones), else ``kind``."""
    if kind is redis.SSLConnection:
        return TlsConnection
    if kind is SentinelManagedSSLConnection:
        return SentinelTlsConnection
    return kind
