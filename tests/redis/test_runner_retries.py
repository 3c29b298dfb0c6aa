"""The sync runner's calls are tried as often as the client's retry policy says: the first
attempt, made outside the policy, counts as the policy's first; a forked child never sends on
its parent's connection."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from foundry.adapters.redis.runner import FunctionRunner
from tests.redis_server import free_port

pytestmark = pytest.mark.redis


class CountedConnection(redis.Connection):
    """A connection that counts the calls sent on it (each attempt sends once)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountedConnection.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("retries", [0, 2])
def test_a_call_to_a_server_that_is_down_is_tried_once_plus_the_retries(retries: int) -> None:
    pool = redis.ConnectionPool(
        port=free_port(),  # nothing listens there
        retry=Retry(NoBackoff(), retries),
        connection_class=CountedConnection,
    )
    client = redis.Redis(connection_pool=pool)
    CountedConnection.sent = 0

    with pytest.raises(redis.ConnectionError):
        FunctionRunner(client).call("enqueue", ["k"], ["", "x"])

    assert CountedConnection.sent == 1 + retries


def test_a_forked_child_calls_on_a_connection_of_its_own(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    runner = FunctionRunner(client)
    runner.load()
    runner.call("stats", ["{fork}:jobs"], [""])
    parent_id = _client_id(runner)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the id of the connection its call went on
        try:
            runner.call("stats", ["{fork}:jobs"], [""])
            os.write(write, str(_client_id(runner)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id = int(os.read(read, 100) or b"0")
    os.close(read)

    assert child_id not in (0, parent_id)
    assert _client_id(runner) == parent_id  # the parent's connection is its own still


def _client_id(runner: FunctionRunner) -> int:
    """The server's id of the connection the runner's last call went on (this thread's)."""
    conn = runner._pinned.connection
    conn.send_command("CLIENT", "ID")
    return int(conn.read_response())
