"""The asyncio pipe on a real Redis: replies and calls larger than one read or one write,
replies cut into pieces or cut off, and the connections that keep their transport (TLS,
uvloop)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import uvloop

from foundry.adapters.redis.async_pipe import Pipe, SocketPipe, TransportPipe
from foundry.adapters.redis.async_pipes import Pipes
from foundry.adapters.redis.async_runner import AsyncFunctionRunner, pack_command
from foundry.adapters.redis.connection import RedisSettings, connect_async
from tests.backends import unique_prefix
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

BIG = 3 * 1024 * 1024  # far more than one read takes
HUGE = 16 * 1024 * 1024  # more than the socket takes in one write (4 MiB at most on Linux)


def _value(size: int) -> bytes:
    """``size`` bytes in which a byte lost, doubled or moved shows."""
    return bytes(range(251)) * (size // 251) + b"end"


async def _opened(url: str) -> tuple[Pipes, Pipe]:
    pipes = Pipes(connect_async(RedisSettings(url=url)))
    return pipes, await pipes.open()


def _call(pipes: Pipes, *args: str | bytes) -> Awaitable[Any]:
    """One command on the open pipe, its reply held to the socket timeout."""
    future = pipes.send(pack_command(args))
    assert future is not None
    return future


def test_a_plain_connection_on_the_stock_loop_is_read_on_its_socket(redis_url: str) -> None:
    async def main() -> type[Pipe]:
        pipes, pipe = await _opened(redis_url)
        await pipes.close()
        return type(pipe)

    assert asyncio.run(main()) is SocketPipe


def test_replies_larger_than_one_read_arrive_whole_and_in_order(redis_url: str) -> None:
    key = unique_prefix("big")
    value = _value(BIG)
    redis.Redis.from_url(redis_url).set(key, value)

    async def main() -> list[Any]:
        pipes, _ = await _opened(redis_url)
        replies = await asyncio.gather(
            _call(pipes, "GET", key), _call(pipes, "PING"), _call(pipes, "GET", key)
        )
        await pipes.close()
        return list(replies)

    assert asyncio.run(main()) == [value, b"PONG", value]


def test_a_call_larger_than_the_socket_takes_at_once_is_written_whole(redis_url: str) -> None:
    key = unique_prefix("huge")
    value = _value(HUGE)

    async def main() -> list[Any]:
        pipes, _ = await _opened(redis_url)
        stored = await _call(pipes, "SET", key, value)
        after = await asyncio.gather(_call(pipes, "STRLEN", key), _call(pipes, "ECHO", "after"))
        await pipes.close()
        return [stored, *after]

    assert asyncio.run(main()) == [b"OK", len(value), b"after"]
    assert redis.Redis.from_url(redis_url).getdel(key) == value


def test_replies_cut_into_small_pieces_are_put_together(redis_url: str) -> None:
    async def main() -> list[Any]:
        async with _Proxy(redis_url, piece=3) as proxy:
            pipes, _ = await _opened(proxy.url)
            replies = await asyncio.gather(*(_call(pipes, "ECHO", f"reply {n}") for n in range(20)))
            await pipes.close()
            return list(replies)

    assert asyncio.run(main()) == [f"reply {n}".encode() for n in range(20)]


def test_a_connection_cut_mid_reply_fails_what_it_awaited_and_the_next_call_reconnects(
    redis_url: str,
) -> None:
    key = unique_prefix("big")
    value = _value(BIG)
    redis.Redis.from_url(redis_url).set(key, value)

    async def main() -> tuple[list[Any], Any, int]:
        async with _Proxy(redis_url, cut_first_after=BIG // 2) as proxy:
            pipes, _ = await _opened(proxy.url)
            cut = await asyncio.gather(
                _call(pipes, "GET", key), _call(pipes, "PING"), return_exceptions=True
            )
            await pipes.open()
            again = await _call(pipes, "STRLEN", key)
            await pipes.close()
            return list(cut), again, proxy.connections

    cut, again, connections = asyncio.run(main())

    assert [type(error) for error in cut] == [redis.ConnectionError, redis.ConnectionError]
    assert "connection to Redis lost" in str(cut[0])
    assert (again, connections) == (len(value), 2)


def test_a_call_through_the_runner_is_sent_again_once_its_connection_is_cut_mid_reply(
    redis_url: str,
) -> None:
    key = unique_prefix("big")
    value = _value(BIG)
    redis.Redis.from_url(redis_url).set(key, value)

    async def main() -> tuple[Any, int]:
        async with _Proxy(redis_url, cut_first_after=BIG // 2) as proxy:
            runner = AsyncFunctionRunner(connect_async(RedisSettings(url=proxy.url)))
            reply = await runner.command("GET", key)
            await runner.aclose()
            return reply, proxy.connections

    assert asyncio.run(main()) == (value, 2)


def test_a_closed_pipe_lets_go_of_its_socket_and_a_new_one_opens(redis_url: str) -> None:
    async def main() -> tuple[int, Any, bool]:
        pipes, pipe = await _opened(redis_url)
        assert isinstance(pipe, SocketPipe)
        await pipes.close()
        reopened = await pipes.open()
        reply = await _call(pipes, "PING")
        await pipes.close()
        return pipe._socket.fileno(), reply, reopened is pipe

    assert asyncio.run(main()) == (-1, b"PONG", False)


def test_uvloop_keeps_the_transport(redis_url: str) -> None:
    assert uvloop.run(_set_and_get_big(redis_url)) == (TransportPipe, [b"OK", _value(BIG)])


def test_tls_keeps_the_transport(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    url = _tls_url(redis_server_factory(), tmp_path)

    assert asyncio.run(_set_and_get_big(url)) == (TransportPipe, [b"OK", _value(BIG)])


async def _set_and_get_big(url: str) -> tuple[type[Pipe], list[Any]]:
    """The kind of pipe opened for ``url``, and its replies to a SET and GET of a big value."""
    key = unique_prefix("big")
    pipes, pipe = await _opened(url)
    replies = [await _call(pipes, "SET", key, _value(BIG)), await _call(pipes, "GET", key)]
    await pipes.close()
    return type(pipe), replies


def _tls_url(server: RedisServer, folder: Path) -> str:
    """A TLS port beside ``server``'s plain one, its certificate its own CA."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server.restart(
        **{
            "tls-port": str(port),
            "tls-cert-file": str(cert),
            "tls-key-file": str(key),
            "tls-ca-cert-file": str(cert),
            "tls-auth-clients": "no",
        }
    )
    return f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"


class _Proxy:
    """A TCP relay to a real Redis in the test's loop: it hands Redis's replies on in pieces
    of ``piece`` bytes (each in a turn of its own), or cuts its first connection after
    ``cut_first_after`` bytes of replies."""

    def __init__(self, url: str, *, piece: int = 0, cut_first_after: int = 0) -> None:
        self._target = urlsplit(url)
        self._piece = piece
        self._cut = cut_first_after
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> _Proxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut = self._cut if self.connections == 1 else 0
        upstream = await asyncio.open_connection(self._target.hostname, self._target.port)
        up = self._spawn(_forward(reader, upstream[1], 0, 0))
        down = self._spawn(_forward(upstream[0], writer, self._piece, cut))
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        writer.transport.abort()
        upstream[1].transport.abort()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._relays.add(task)
        return task


async def _forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: int, cut: int
) -> None:
    """Copy ``reader`` to ``writer`` (in ``piece``-byte writes, if given) until the end, or
    until ``cut`` bytes went through (if given)."""
    sent = 0
    while data := await reader.read(65536):
        if cut and sent + len(data) >= cut:
            writer.write(data[: cut - sent])
            await writer.drain()
            return
        for start in range(0, len(data), piece or len(data)):
            writer.write(data[start : start + (piece or len(data))])
            await writer.drain()
            if piece:
                await asyncio.sleep(0)
        sent += len(data)


def test_a_caller_that_leaves_while_its_call_is_sent_again_stops_the_sending(
    redis_url: str,
) -> None:
    name = unique_prefix("leaving")
    key = unique_prefix("list")
    admin = redis.Redis.from_url(redis_url)

    async def main() -> tuple[bool, set[asyncio.Task[Any]]]:
        runner = AsyncFunctionRunner(connect_async(RedisSettings(url=redis_url, client_name=name)))
        await runner.command("PING")
        caller = asyncio.ensure_future(runner.command("BLPOP", key, "0"))
        first = await _blocked(admin, name, set())
        admin.client_kill_filter(_id=first)
        await _blocked(admin, name, {first})  # sent again on a new connection
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        await asyncio.sleep(0)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        await runner.aclose()
        return caller.cancelled(), left

    assert asyncio.run(main()) == (True, set())


async def _blocked(admin: redis.Redis, name: str, seen: set[str]) -> str:
    """The id of a connection named ``name``, not in ``seen``, blocked in BLPOP (polled)."""
    while True:
        for client in admin.client_list():
            if client["name"] == name and client["cmd"] == "blpop" and client["id"] not in seen:
                return str(client["id"])
        await asyncio.sleep(0.01)
