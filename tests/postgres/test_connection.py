"""The connection pool: lazy, and a server that does not answer is ``QueueUnavailable``."""

from __future__ import annotations

import os
from datetime import timedelta

import attrs
import pytest

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool, pooled
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import CacheUnavailable, QueueUnavailable
from tests.backends import postgres_queue

pytestmark = pytest.mark.postgres


def test_the_pool_connects_on_first_use(postgres_url: str) -> None:
    settings = PostgresSettings(postgres_url, pool_size=2)
    pool = open_pool(settings, name="foundry-test")

    assert pool.closed
    with pooled(pool, settings) as conn:
        row = conn.execute("SELECT current_setting('application_name')").fetchone()
    pool.close()

    assert row == ("foundry-test",)


@pytest.mark.parametrize("kind", [QueueUnavailable, CacheUnavailable])
def test_an_unreachable_server_raises_the_ports_error_with_the_servers_reason(
    kind: type[QueueUnavailable | CacheUnavailable],
) -> None:
    settings = PostgresSettings(
        "postgresql://app:secret@127.0.0.1:1/app", connect_timeout=timedelta(seconds=1)
    )
    pool = open_pool(settings)

    with pytest.raises(kind) as raised, pooled(pool, settings, kind):
        pass
    pool.close()

    message = str(raised.value)
    assert "127.0.0.1:1/app is unreachable" in message
    assert "refused" in message
    assert "secret" not in message


def test_a_pool_whose_connections_all_stay_busy_says_so_naming_its_size(
    postgres_url: str,
) -> None:
    settings = PostgresSettings(
        postgres_url, pool_size=1, connect_timeout=timedelta(milliseconds=200)
    )
    pool = open_pool(settings)

    with (
        pooled(pool, settings),  # holds the one connection
        pytest.raises(QueueUnavailable) as raised,
        pooled(pool, settings),
    ):
        pass
    pool.close()

    message = str(raised.value)
    assert "DATABASE_POOL_SIZE" in message
    assert "all 1 pooled connections" in message
    assert "unreachable" not in message


def test_a_pool_used_before_a_fork_serves_the_child_on_connections_of_its_own(
    postgres_url: str,
) -> None:
    settings = PostgresSettings(postgres_url, pool_size=1)  # one connection: the same
    pool = open_pool(settings)
    with pooled(pool, settings) as conn:  # opened here: its connections and threads
        parent = conn.execute("SELECT pg_backend_pid()").fetchone()
    reader, writer = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: its own connection, never the parent's socket
        status = 1
        try:
            with pooled(pool, settings) as conn:
                row = conn.execute("SELECT pg_backend_pid()").fetchone()
            os.write(writer, str(row[0] if row else "").encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    _, status = os.waitpid(pid, 0)
    child = os.read(reader, 100).decode()
    os.close(reader)
    with pooled(pool, settings) as conn:
        after = conn.execute("SELECT pg_backend_pid()").fetchone()
    pool.close()

    assert os.waitstatus_to_exitcode(status) == 0
    assert parent is not None
    assert child not in ("", str(parent[0]))
    assert after == parent  # the parent's connection was left alone


def test_a_child_closing_a_pool_made_before_its_fork_leaves_its_parents_sessions_alone(
    request: pytest.FixtureRequest,
) -> None:
    migrated = postgres_queue(request.getfixturevalue, None)
    settings = attrs.evolve(migrated._db.settings, pool_size=1)  # one connection: the same
    queue = PostgresQueue(open_pool(settings), settings)
    queue.stats("default")  # opens the pool's connection here
    with pooled(queue._db.pool, settings) as conn:
        parent = conn.execute("SELECT pg_backend_pid()").fetchone()

    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            queue.stats("default")
            queue.close()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    with pooled(queue._db.pool, settings) as conn:
        after = conn.execute("SELECT pg_backend_pid()").fetchone()
    queue.close()

    assert os.waitstatus_to_exitcode(status) == 0
    assert after == parent
