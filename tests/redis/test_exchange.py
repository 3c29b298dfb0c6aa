"""The runner's own request and reply on a redis-py connection: replies as redis-py reads them,
errors as redis-py raises them, the connection closed after a broken exchange."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.connection import Connection

from foundry.adapters.redis.exchange import Exchange

pytestmark = pytest.mark.redis

PING = b"*1\r\n$4\r\nPING\r\n"


def _command(*parts: str) -> bytes:
    head = b"*%d\r\n" % len(parts)
    return head + b"".join(b"$%d\r\n%s\r\n" % (len(p), p.encode()) for p in parts)


@pytest.fixture
def conn(redis_url: str) -> Iterator[Connection]:
    pool = redis.Redis.from_url(redis_url, protocol=3, socket_timeout=0.2).connection_pool
    made = pool.make_connection()
    made.connect()
    yield made
    made.disconnect()


def _ready(conn: Connection) -> Exchange:
    exchange = Exchange()
    assert exchange.ready(conn)
    return exchange


def test_a_reply_is_read_as_redis_py_reads_it(conn: Connection) -> None:
    exchange = _ready(conn)

    assert exchange.exchange(conn, _command("ECHO", "hello")) == b"hello"
    assert exchange.exchange(conn, _command("INCRBY", "exchange:n", "2")) >= 2


def test_an_error_reply_is_raised_as_its_redis_py_class(conn: Connection) -> None:
    exchange = _ready(conn)

    with pytest.raises(redis.ResponseError, match="Function not found"):
        exchange.exchange(conn, _command("FCALL", "no_such_function", "0"))
    assert exchange.exchange(conn, PING) == b"PONG"  # the connection carries on


def test_a_push_before_the_reply_is_handed_on_and_the_reply_returned(
    conn: Connection, redis_url: str
) -> None:
    conn.send_command("CLIENT", "TRACKING", "ON")
    conn.read_response()
    conn.send_command("GET", "exchange:tracked")
    conn.read_response()
    redis.Redis.from_url(redis_url).set("exchange:tracked", "1")  # an invalidation push
    exchange = _ready(conn)

    assert exchange.exchange(conn, PING) == b"PONG"


def test_a_connection_the_server_closed_raises_connection_error_and_is_closed(
    conn: Connection, redis_url: str
) -> None:
    exchange = _ready(conn)
    mine = exchange.exchange(conn, _command("CLIENT", "ID"))
    redis.Redis.from_url(redis_url).client_kill_filter(_id=mine)

    with pytest.raises(redis.ConnectionError):
        exchange.exchange(conn, PING)
    assert not conn.is_connected


def test_a_reply_later_than_the_socket_timeout_raises_timeout_error_and_closes(
    conn: Connection,
) -> None:
    exchange = _ready(conn)

    with pytest.raises(redis.TimeoutError):
        exchange.exchange(conn, _command("BLPOP", "exchange:empty", "1"))
    assert not conn.is_connected
    assert not exchange.ready(conn)


def test_a_request_longer_than_the_socket_buffer_is_sent_whole(conn: Connection) -> None:
    exchange = _ready(conn)
    value = "x" * 8_000_000  # more than a loopback socket's send buffer takes at once

    assert exchange.exchange(conn, _command("SET", "exchange:big", value)) == b"OK"
    assert exchange.exchange(conn, _command("STRLEN", "exchange:big")) == len(value)
    assert exchange.exchange(conn, PING) == b"PONG"


def test_requests_sent_in_one_write_get_their_replies_in_order_an_error_in_its_place(
    conn: Connection,
) -> None:
    exchange = _ready(conn)
    requests = [_command("ECHO", "one"), _command("FCALL", "no_such_function", "0"), PING]

    replies = exchange.exchange_many(conn, b"".join(requests), len(requests))

    assert replies[0] == b"one"
    assert isinstance(replies[1], redis.ResponseError)
    assert replies[2] == b"PONG"
    assert exchange.exchange(conn, PING) == b"PONG"  # every reply was read


def test_a_reply_of_several_later_than_the_socket_timeout_raises_timeout_error_and_closes(
    conn: Connection,
) -> None:
    exchange = _ready(conn)
    requests = [PING, _command("BLPOP", "exchange:empty", "1")]

    with pytest.raises(redis.TimeoutError):
        exchange.exchange_many(conn, b"".join(requests), len(requests))
    assert not conn.is_connected
