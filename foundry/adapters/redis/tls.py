"""TLS connections that tell a server without TLS from an outage: a ``rediss://`` URL naming a
port without TLS (a plain Redis reads the handshake as a command and waits for the rest) is a
setting to fix, said at once, not a server to wait for.

When a handshake fails (no answer in time, or a reply that is not TLS), the address is asked
a plain ``PING`` on a connection of its own: a Redis answer (``+PONG``, ``-NOAUTH``...) means
the server does not speak TLS there, ``TlsNotSpoken``, a configuration error no retry fixes;
anything else (no answer: a server paused, a network down) leaves ``TlsHandshakeFailed``, an
outage retried as any other. A TLS alert saying the server refuses this client (it asks for
a client certificate, or allows no TLS version or cipher the client does) is ``TlsRefused``,
said at once with the fix, without the ``PING``; TLS 1.3 sends a missing certificate's alert
after the handshake, read by the connection's first commands. A certificate that does not
verify is left as it is (a refusal of its own). Every TLS connection Foundry opens is checked
so: to one server, to a Sentinel-managed master and to the sentinels, to a cluster's nodes,
sync and asyncio (the asyncio classes are in ``async_tls``: a sync worker never imports
redis-py's asyncio client).
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


class TlsRefused(redis.ConnectionError):
    """The server speaks TLS but refused this client: it asks for a client certificate, or
    allows no TLS version or cipher the client does (a configuration error, raised at once)."""


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


#: The endings of the TLS alerts and errors that say the server speaks TLS and refuses this
#: client, and what each says to fix: a client certificate, the TLS versions, either.
_REFUSALS = {
    "CERTIFICATE_REQUIRED": "certificate",
    "PROTOCOL_VERSION": "versions",
    "UNSUPPORTED_PROTOCOL": "versions",
    "NO_PROTOCOLS_AVAILABLE": "versions",
    "HANDSHAKE_FAILURE": "either",
    "NO_SHARED_CIPHER": "either",
    "INSUFFICIENT_SECURITY": "either",
    "ACCESS_DENIED": "either",
}
_CERT_FIX = (
    "pass one its CA signed with ssl_certfile=/path/client.pem&ssl_keyfile=/path/client.key "
    "in the rediss:// URL"
)
_VERSION_FIX = (
    "allow TLSv1.2 or TLSv1.3 and their usual ciphers on the server (tls-protocols, "
    "tls-ciphers, tls-ciphersuites)"
)
_FIXES = {
    "certificate": f"the server asks for a client certificate (tls-auth-clients): {_CERT_FIX}",
    "versions": f"the server allows no TLS version the client does: {_VERSION_FIX}",
    "either": f"if it asks for a client certificate (tls-auth-clients), {_CERT_FIX}; else "
    f"{_VERSION_FIX}",
}


def _refusal(error: BaseException | None) -> tuple[ssl.SSLError, str] | None:
    """The TLS error in ``error``'s chain that says the server refused this client, and
    which fix it needs; ``None`` if there is none."""
    while error is not None:
        if isinstance(error, ssl.SSLError):
            reason = str(error.reason or "")
            fix = next((fix for end, fix in _REFUSALS.items() if reason.endswith(end)), None)
            if fix is not None:
                return error, fix
        error = error.__cause__ or error.__context__
    return None


def refused_by_server(error: BaseException | None) -> bool:
    """Whether ``error`` (a TLS error, or one it caused) says the server refused this client:
    no retry changes that."""
    return _refusal(error) is not None


def refused_tls(host: str, port: int, error: BaseException) -> TlsRefused | None:
    """``TlsRefused`` naming the server's refusal and the fix, if ``error`` says the server
    refused this client; else ``None``."""
    found = _refusal(error)
    if found is None:
        return None
    alert, fix = found
    return TlsRefused(
        f"TLS server {host}:{port} refused the TLS handshake ({alert.reason}): {_FIXES[fix]}"
    )


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
            refusal = refused_tls(self.host, self.port, error)
            if refusal is not None:
                raise refusal from error
            plain = answers_without_tls(self.host, self.port, self.socket_connect_timeout)
            raise failed(self.host, self.port, error, plain) from error

    def on_connect_check_health(self, check_health: bool = True) -> None:
        """redis-py's first commands; a refusal the server sent after the handshake (TLS
        1.3 asks for a client certificate so) read as ``TlsRefused``."""
        try:
            super().on_connect_check_health(check_health)  # type: ignore[misc]
        except redis.ConnectionError as error:
            refusal = refused_tls(self.host, self.port, error)
            if refusal is None:
                raise
            raise refusal from error


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
