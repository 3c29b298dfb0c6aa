"""One asyncio connection to Redis as a pipe: calls are written as they come and their replies,
read by hiredis, are handed to the callers' futures in order.

redis-py's asyncio connection reads each reply through a stream reader and four coroutine
layers, and arms a timeout per read: a third of an awaited dispatch's work. A pipe takes over
a connection redis-py opened (its handshake: AUTH, SELECT, CLIENT SETNAME, Sentinel's master
address, TLS). On asyncio's selector loops a plain connection is read and written on its
socket (``SocketPipe``: the loop watches the socket, no transport in between); TLS, and other
loops (uvloop), keep the transport (``TransportPipe``). Calls written while replies are
awaited go together in one write at the loop's next turn, so 100 concurrent calls cost two
writes; a caller that is cancelled leaves its reply to be read and dropped, and the others'
calls alone. On asyncio's own loops the last reply of a read resumes its caller inside the
read (``async_reply.wake``): one loop turn per round trip instead of two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
import redis
from redis.exceptions import InvalidResponse, ResponseError

from foundry.adapters.redis.async_driver import parse_error
from foundry.adapters.redis.async_reply import wake

#: What becomes of a call's error reply, or of the loss of its connection: given the pipe, the
#: call's future (pending), the call and the error.
Settle = Callable[["Pipe", asyncio.Future[Any], bytes, Exception], None]


def raised(_: Pipe, future: asyncio.Future[Any], __: bytes, error: Exception) -> None:
    """``Settle`` that raises the error to the call's caller."""
    future.set_exception(error)


class Pipe:
    """Replies of one connection, in order, to the futures of the calls written on it.

    ``lost`` is set once the connection is gone (closed, reset, or expired by the owner's
    deadline): every reply still awaited fails with it, and nothing more is written.
    ``open_pipe`` picks how the connection is read and written: ``SocketPipe`` or
    ``TransportPipe``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: Any,
        write: Callable[[bytes], object],
        settle: Settle = raised,
    ) -> None:
        self.loop = loop
        #: The redis-py connection that opened the connection (its methods are untyped).
        self.connection = connection
        self.fork = forks[0]
        #: Whether a read resumes its last caller at once (``wake``): asyncio's own loops run
        #: a callback scheduled during a read only after another select, a turn ``wake``
        #: saves; uvloop runs it in the same turn.
        self.wakes = isinstance(loop, asyncio.BaseEventLoop)
        #: A new future: asyncio's own loops make plain ones (``wake`` needs them), of the
        #: running loop (calls are sent from the pipe's loop), without ``create_future``'s
        #: Python frame or a ``loop`` keyword to parse.
        self._future: Callable[[], asyncio.Future[Any]] = (
            asyncio.Future if self.wakes else loop.create_future
        )
        #: Writes bytes now, or as soon as the connection takes them; a failure is handled
        #: later in the turn, as a transport's is (the caller's future is not yet awaited).
        self._write = write
        self._settle = settle
        self.lost: Exception | None = None
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=parse_error)
        #: The futures awaiting a reply, in the order their calls were written, each with
        #: when its reply is due (``time.monotonic``; 0: no deadline) and, for ``send``'s,
        #: the call (for ``settle``).
        self._waiting: deque[tuple[asyncio.Future[Any], float, bytes | None]] = deque()
        self._buffer: list[bytes] = []

    def send(self, packed: bytes, due: float = 0.0) -> asyncio.Future[Any]:
        """Write ``packed`` (one command) now, or with the other calls of this turn when
        replies are awaited; the future of its reply. An error reply, or the loss of the
        connection before the reply, goes to ``settle``, which completes the future."""
        if self._waiting:
            self._join(packed)
        else:
            self._write(packed)  # first: the future is made while Redis runs the call
        future = self._future()
        self._waiting.append((future, due, packed))
        return future

    def send_many(self, packed: list[bytes], due: float = 0.0) -> list[asyncio.Future[Any]]:
        """Several commands in one write; the futures of their replies, in order (error
        replies as values, the loss of the connection raised)."""
        futures = [self._future() for _ in packed]
        if self.lost is not None:
            for future in futures:
                future.set_exception(self.lost)
            return futures
        if self._waiting:
            self._join(b"".join(packed))
        else:
            self._write(b"".join(packed))
        self._waiting.extend((future, due, None) for future in futures)
        return futures

    def oldest_due(self) -> float | None:
        """When the oldest awaited reply is due (``None``: none is awaited, or no deadline)."""
        return self._waiting[0][1] or None if self._waiting else None

    def close(self, error: Exception) -> None:
        """Drop the connection at once; every reply still awaited fails with ``error``."""
        self._fail(error)
        self._release()

    def abandon(self) -> None:
        """End the connection of a loop closed without being shut down (its futures can no
        longer be told anything): the server sees the connection end at once, the socket
        objects are left to the garbage collector."""
        if self.lost is None:
            self.lost = redis.ConnectionError("its event loop was closed")
        self._waiting.clear()
        self._buffer.clear()
        self._release()

    def _release(self) -> None:
        """Let go of the connection (idempotent)."""
        raise NotImplementedError

    def _hand_over(self) -> None:
        """Hand each complete reply read so far to the oldest waiting future (dropped if its
        caller left); the last one of the read resumes its caller at once where that saves a
        turn."""
        reader = self._reader
        waiting = self._waiting
        reply = reader.gets()
        while reply is not False:
            future, _, packed = waiting.popleft()
            following = reader.gets()
            if future.done():
                pass
            elif packed is not None and isinstance(reply, ResponseError):
                self._settle(self, future, packed, reply)
            elif following is False and self.wakes:
                wake(future, reply)  # last: its caller may write or close the pipe meanwhile
            else:
                future.set_result(reply)
            reply = following

    def _drop(self, exc: BaseException | None) -> None:
        """The connection failed or closed: fail what is still awaited, let go of it."""
        reason = f": {exc}" if exc is not None else ""
        self.close(redis.ConnectionError(f"connection to Redis lost{reason}"))

    def _join(self, packed: bytes) -> None:
        """Write ``packed`` with the other calls of this turn, at the loop's next one."""
        if not self._buffer:
            self.loop.call_soon(self._flush)
        self._buffer.append(packed)

    def _flush(self) -> None:
        if self._buffer and self.lost is None:
            self._write(b"".join(self._buffer))
        self._buffer.clear()

    def _fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        self._buffer.clear()
        while self._waiting:
            future, _, packed = self._waiting.popleft()
            if future.done():
                pass
            elif packed is None:
                future.set_exception(self.lost)
            else:
                self._settle(self, future, packed, self.lost)


class SocketPipe(Pipe):
    """A pipe on the connection's socket itself, for plain TCP and Unix sockets on asyncio's
    selector loops: the loop calls ``_readable`` when replies arrive, which reads them into a
    buffer of its own, and calls are written on its descriptor (``os.write``: ``socket.send``
    parses its arguments the slow way), the part the socket does not take at once when it is
    writable again. The transport redis-py opened stays paused and unused (closed with the
    pipe): its ``write`` and its read callbacks are three Python frames per round trip, and
    its read a 256 KiB allocation.
    """

    #: Bytes read at most per ``recv_into`` (replies larger than it take several reads).
    CHUNK = 64 * 1024

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        connection: Any,
        settle: Settle = raised,
    ) -> None:
        super().__init__(loop, connection, self._send, settle)
        self._transport = transport
        transport.pause_reading()
        #: A descriptor of its own: the loop refuses to watch one that a transport holds.
        self._socket: socket.socket = transport.get_extra_info("socket").dup()
        self._socket.setblocking(False)
        self._fd = self._socket.fileno()
        self._received = bytearray(self.CHUNK)
        #: What the socket has not taken yet (written first, when it is writable again).
        self._unsent = bytearray()
        self._released = False
        loop.add_reader(self._fd, self._readable)

    def send(self, packed: bytes, due: float = 0.0) -> asyncio.Future[Any]:
        """``Pipe.send``, a call that goes out at once written here (no frame between)."""
        if self._waiting or self._unsent:
            self._join(packed)
        else:
            try:
                sent = os.write(self._fd, packed)
            except OSError as error:
                sent = self._refused(error, len(packed))
            if sent < len(packed):
                self._keep(packed, sent)
        future: asyncio.Future[Any] = asyncio.Future()
        self._waiting.append((future, due, packed))
        return future

    def _send(self, data: bytes) -> None:
        if self._unsent:
            self._unsent += data
            return
        try:
            sent = os.write(self._fd, data)
        except OSError as error:
            sent = self._refused(error, len(data))
        if sent < len(data):
            self._keep(data, sent)

    def _refused(self, error: OSError, size: int) -> int:
        """How much of ``size`` bytes a write that raised ``error`` leaves done: none if the
        socket is full, all if the connection is gone (dropped later in the turn, as a
        transport's failure is: the caller's future is not yet awaited)."""
        if isinstance(error, (BlockingIOError, InterruptedError)):
            return 0
        self.loop.call_soon(self._drop, error)
        return size

    def _keep(self, data: bytes, sent: int) -> None:
        """Keep what the socket did not take, for when it is writable again."""
        self._unsent += memoryview(data)[sent:]
        self.loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = os.write(self._fd, self._unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._drop(error)
            return
        del self._unsent[:sent]
        if not self._unsent:
            self.loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            count = self._socket.recv_into(self._received)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._drop(error)
            return
        if not count:
            self._drop(None)  # Redis closed the connection
            return
        self._reader.feed(self._received, 0, count)  # type: ignore[arg-type]  # any buffer
        try:
            self._hand_over()
        except Exception as error:  # a reply hiredis cannot parse: as a transport would do
            self._drop(error)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self.loop.remove_reader(self._fd)
        self.loop.remove_writer(self._fd)
        self._socket.close()
        self._fd = -1  # a later write fails (EBADF), never reaching a socket that took the number
        self._unsent.clear()
        _abort(self._transport, self.loop)


class TransportPipe(Pipe, asyncio.Protocol):
    """A pipe reading and writing the transport redis-py opened (TLS, or loops other than
    asyncio's selector loops: uvloop's transports are already C), as its protocol."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        connection: Any,
        settle: Settle = raised,
    ) -> None:
        super().__init__(loop, connection, transport.write, settle)
        self._transport = transport
        transport.set_protocol(self)

    def data_received(self, data: bytes) -> None:
        """Hand the replies completed by ``data`` to their futures."""
        self._reader.feed(data)
        self._hand_over()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: fail what is still awaited."""
        self._drop(exc)

    def _release(self) -> None:
        _abort(self._transport, self.loop)


def _abort(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
    """Drop ``transport``'s connection; a closed loop can no longer close it, so its socket
    is shut down instead (the server sees the connection end)."""
    if not loop.is_closed():
        transport.abort()
        return
    with contextlib.suppress(OSError, AttributeError):
        transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


def open_pipe(
    transport: asyncio.Transport,
    loop: asyncio.AbstractEventLoop,
    connection: Any,
    settle: Settle = raised,
) -> Pipe:
    """The pipe for ``transport``: on its socket where the loop lets a socket be watched
    (a selector loop) and nothing sits between socket and transport (no TLS); on the
    transport otherwise."""
    plain = transport.get_extra_info("sslcontext") is None
    if plain and isinstance(loop, asyncio.SelectorEventLoop) and transport.get_extra_info("socket"):
        return SocketPipe(transport, loop, connection, settle)
    return TransportPipe(transport, loop, connection, settle)


#: Bumped in a forked child: a pipe belongs to the process that opened it.
forks = [0]
os.register_at_fork(after_in_child=lambda: forks.__setitem__(0, forks[0] + 1))
