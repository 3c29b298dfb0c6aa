"""A ``foundry.connect()`` dropped without ``close()`` lets go of its Redis connections when it
is collected, the process's first one too (its container keeps the ``Container`` class's own
providers), while a dispatcher taken from it and kept still dispatches. Each case runs in a
fresh interpreter, where the connection is the first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]

_COUNTING = """
import gc, sys, warnings
import psutil
import foundry
from tests.e2e.apps import add, registry

warnings.simplefilter("error", ResourceWarning)
port = int(sys.argv[1].rsplit(":", 1)[1].split("/")[0])

def sockets():
    gc.collect()
    held = psutil.Process().net_connections("tcp")
    return sum(1 for socket in held if socket.raddr and socket.raddr.port == port)
"""

_DROPPED = (
    _COUNTING
    + """
def request():
    fx = foundry.connect(sys.argv[1])
    fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2})
    fx.cache.set("k", 1)
    return sockets()

print(request(), sockets())
"""
)

_KEPT = (
    _COUNTING
    + """
dispatcher = foundry.connect(sys.argv[1]).dispatcher(registry)
first = sockets()
dispatcher.dispatch(add, {"a": 1, "b": 2})
held = sockets()
del dispatcher
print(first, held, sockets())
"""
)


def _run(script: str, redis_url: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script, redis_url],
        cwd=ROOT,  # where the script imports tests.e2e.apps from
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [int(word) for word in done.stdout.split()]


def test_a_dropped_connection_closes_its_redis_connections(redis_url: str) -> None:
    held, after = _run(_DROPPED, redis_url)

    assert held >= 2  # the queue's and the cache's
    assert after == 0


def test_a_dispatcher_kept_from_a_dropped_connection_dispatches_and_closes_with_it(
    redis_url: str,
) -> None:
    first, held, after = _run(_KEPT, redis_url)

    assert (first, after) == (0, 0)
    assert held >= 1
