"""A producer's ``foundry.connect()`` on PostgreSQL: ``close()`` closes its pool (threads and
connections), and one left open is closed when the interpreter exits, before it tears down
(a pool collected at shutdown waits for its threads, seconds each, and warns)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

import foundry
from foundry.adapters.postgres.queue import PostgresQueue
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import add, registry

pytestmark = pytest.mark.postgres

# Registered before Foundry opens a pool, so it runs after Foundry's own exit hook (atexit
# runs last-registered first): it sees what the interpreter would have to tear down.
_UNCLOSED = """
import atexit, sys, threading
import foundry
from tests.e2e.apps import add, registry

def pool_threads_left():
    names = [t.name for t in threading.enumerate() if t.name.startswith("foundry-")]
    print("left:", ",".join(names), flush=True)

atexit.register(pool_threads_left)
fx = foundry.connect(sys.argv[1])
print("job:", fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2}), flush=True)
fx.cache.set("k", 1)
"""


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("foundry-")}


def test_close_closes_the_connections_postgresql_pool(
    queue: PostgresQueue, postgres_url: str
) -> None:
    settings = foundry.Settings(database_schema=queue.schema).on(postgres_url)
    before = _pool_threads()

    with foundry.connect(settings) as fx:
        fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2})
        fx.cache.set("k", 1)
        opened = _pool_threads() - before

    assert opened
    assert not any(thread.is_alive() for thread in opened)


def test_a_connection_left_open_is_closed_quietly_when_the_interpreter_exits(
    queue: PostgresQueue, postgres_url: str
) -> None:
    env = {**os.environ, "DATABASE_SCHEMA": queue.schema}

    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _UNCLOSED, postgres_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "left: "
    assert done.stderr == ""
    assert queue.get(done.stdout.splitlines()[0].removeprefix("job: ")) is not None
