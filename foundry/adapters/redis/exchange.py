"""One request and its reply on a connected redis-py connection, without redis-py's per-call
layers (its send, read and parse wrappers were a tenth of a plain dispatch's client work).

The socket, the connection's health check and the classes of error replies are redis-py's
(``_sock``, ``_parser.parse_error``); the reply is parsed by a hiredis reader of this
thread's own, made again for each new socket. Errors are raised as redis-py raises them
(``ConnectionError``, ``TimeoutError``, the error reply's class) and close the connection, so
its retry policy reconnects; a RESP3 push before the reply goes to the parser's handlers. A
connection not connected or due for its health check, speaking RESP3 where hiredis cannot
tell a push, or of a class that reads or sends its own way (a subclass overriding
``read_response`` or ``send_packed_command``) is left to redis-py (``ready`` is false).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import hiredis
import redis
from redis.connection import AbstractConnection
from redis.exceptions import InvalidResponse

_T = TypeVar("_T")
_CLOSED = "Connection closed by server."
#: hiredis >= 3.2 parses a RESP3 push as this type (before, as a plain list).
_PUSH: Any = getattr(hiredis, "PushNotification", None)
#: The replies raised: the reader's error replies (a class ``parse_error`` gives) and a lost
#: connection (a tuple made once: ``A | B`` in ``isinstance`` builds a union per call).
_RAISED = (redis.ResponseError, redis.ConnectionError)


class Exchange:
    """Send and read on one thread's connection; the reader follows its socket."""

    def __init__(self) -> None:
        self._sock: Any = None
        self._reader: Any = None
        self._buffer = bytearray(65536)
        #: The socket's descriptor when it is a plain (not TLS) socket, written directly.
        self._fd = -1

    def ready(self, conn: Any) -> bool:
        """Whether ``exchange`` may serve ``conn`` now."""
        sock = conn._sock
        if sock is None or (_PUSH is None and conn.protocol in (3, "3")):
            return False
        interval = conn.health_check_interval
        if interval and time.monotonic() > conn.next_health_check:
            return False
        if sock is not self._sock:
            if not _plain(type(conn)):
                return False
            encoder = conn.encoder
            options: dict[str, Any] = {"errors": encoder.encoding_errors}
            if encoder.decode_responses:
                options["encoding"] = encoder.encoding
            self._reader = hiredis.Reader(
                protocolError=InvalidResponse, replyError=conn._parser.parse_error, **options
            )
            self._sock = sock
            self._fd = sock.fileno() if type(sock) is socket.socket else -1
        return True

    def exchange(self, conn: Any, packed: bytes) -> Any:
        """Send ``packed`` and read its reply (an error reply is raised)."""
        reply = self._round_trip(conn, packed, self._reply)
        if isinstance(reply, _RAISED):
            raise reply
        return reply

    def exchange_many(self, conn: Any, packed: bytes, count: int) -> list[Any]:
        """Send ``packed``, ``count`` requests in one write, and read their replies in order.

        An error reply is returned in its place, for the caller to raise once every reply is
        read (the connection is then ready for the next request); a lost connection raises.
        """
        return self._round_trip(
            conn, packed, lambda conn: [self._reply(conn) for _ in range(count)]
        )

    def _round_trip(self, conn: Any, packed: bytes, read: Callable[[Any], _T]) -> _T:
        """Send ``packed`` and ``read`` what answers it; a failure closes the connection and is
        raised as redis-py raises it, a success counts as the connection's health check."""
        try:
            self._send(packed)
            answer = read(conn)
        except BaseException as error:
            broken = _broken(conn, error)
            if broken is error:
                raise
            raise broken from error
        if conn.health_check_interval:
            conn.next_health_check = time.monotonic() + conn.health_check_interval
        return answer

    def _send(self, packed: bytes) -> None:
        # A socket with a timeout polls before every send; a request fits the socket's empty
        # send buffer, so it is written directly (one system call of two), what is left (a
        # full buffer) the polling way.
        sent = 0
        if self._fd >= 0:
            try:
                sent = os.write(self._fd, packed)
            except BlockingIOError:
                sent = 0
        if sent < len(packed):
            self._sock.sendall(memoryview(packed)[sent:])

    def _reply(self, conn: Any) -> Any:
        """The next reply, after the RESP3 pushes in front of it (handed to the parser's
        handler)."""
        reply = self._read()
        while _PUSH is not None and type(reply) is _PUSH:
            handle = getattr(conn._parser, "handle_push_response", None)
            if handle is not None:
                handle(reply)
            reply = self._read()
        return reply

    def _read(self) -> Any:
        reader, buffer = self._reader, self._buffer
        reply = reader.gets()
        while reply is False:
            size = self._sock.recv_into(buffer)
            if not size:
                raise redis.ConnectionError(_CLOSED)
            reader.feed(buffer, 0, size)
            reply = reader.gets()
        return reply


def _broken(conn: Any, error: BaseException) -> BaseException:
    """``error`` broke an exchange on ``conn``, which is closed: what to raise, as redis-py
    raises it (a socket's timeout or error becomes redis-py's; anything else as it is)."""
    conn.disconnect()
    if isinstance(error, TimeoutError):  # socket.timeout
        return redis.TimeoutError(f"Timeout talking to {_where(conn)}")
    if isinstance(error, OSError):
        return redis.ConnectionError(f"Error talking to {_where(conn)}: {error}")
    return error


def _plain(kind: type) -> bool:
    """Whether connections of ``kind`` send and read as redis-py's own classes do."""
    return (
        getattr(kind, "read_response", None) is AbstractConnection.read_response
        and getattr(kind, "send_packed_command", None) is AbstractConnection.send_packed_command
    )


def _where(conn: Any) -> str:
    return str(getattr(conn, "path", "") or f"{conn.host}:{conn.port}")
