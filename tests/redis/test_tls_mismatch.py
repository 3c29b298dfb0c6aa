"""A ``rediss://`` URL naming a port without TLS is said as a TLS handshake that failed, with
the fix, not as a server that cannot be reached."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.redis.test_connection_refusals import foundry_cli
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_rediss_to_a_plain_port_says_the_tls_handshake_failed_and_the_fix(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    plain = redis_server_factory()
    env = {"REDIS_URL": f"rediss://127.0.0.1:{plain.port}/0", "REDIS_CONNECT_TIMEOUT": "0.2"}

    done = foundry_cli("stats", env=env)

    assert done.returncode == 3, done.stderr
    assert f"TLS handshake with 127.0.0.1:{plain.port} failed" in done.stderr
    assert "may not speak TLS" in done.stderr
    assert "use redis:// for a server without TLS" in done.stderr
    assert "Timeout connecting" not in done.stderr
