"""The sync runner's calls are tried as often as the client's retry policy says: the first
attempt, made outside the policy, counts as the policy's first."""

from __future__ import annotations

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
