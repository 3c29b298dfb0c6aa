"""A TLS connection that says when its handshake fails, rather than timing out as if the
server could not be reached: a ``rediss://`` URL naming a port without TLS (a plain Redis
reads the handshake as a command and waits for the rest) is a setting to fix."""

from __future__ import annotations

import ssl
from typing import Any

import redis


class TlsHandshakeFailed(redis.ConnectionError):
    """The server accepted the connection but did not complete a TLS handshake."""


class TlsConnection(redis.SSLConnection):
    """redis-py's TLS connection, whose failed handshake (a timeout, a reply that is not TLS)
    is a ``TlsHandshakeFailed`` naming the likely cause and the fix; a certificate that does
    not verify is left as it is (a refusal of its own)."""

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        try:
            return super()._wrap_socket_with_ssl(sock)  # type: ignore[no-untyped-call]
        except ssl.SSLCertVerificationError:
            raise
        except (TimeoutError, ssl.SSLError) as error:
            raise TlsHandshakeFailed(handshake_failure(self.host, self.port, error)) from error


def handshake_failure(host: str, port: int, error: BaseException) -> str:
    """What a failed TLS handshake with ``host:port`` says: the cause and the fix."""
    why = "no answer in time" if isinstance(error, TimeoutError) else str(error) or "refused"
    return (
        f"TLS handshake with {host}:{port} failed ({why}): the server may not speak TLS on "
        "this port; use redis:// for a server without TLS, or name its TLS port (tls-port) "
        "in the rediss:// URL"
    )
