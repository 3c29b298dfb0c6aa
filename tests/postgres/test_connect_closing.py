"""A producer's ``foundry.connect()`` on PostgreSQL: ``close()`` closes its pool (threads and
connections); one dropped unclosed closes it once it is collected with what was taken from it;
one left open is closed when the interpreter exits, before it tears down (a pool collected at
shutdown waits for its threads, seconds each, and warns)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

import foundry
from foundry.adapters.postgres.queue import PostgresQueue
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import add, registry

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]

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


# The process's first connection (its container keeps the ``Container`` class's providers),
# dropped unclosed, then a dispatcher taken from a second one, kept, then dropped.
_DROPPED = """
import gc, sys, threading
import foundry
from tests.e2e.apps import add, registry

def pool_threads():
    gc.collect()
    return len([t for t in threading.enumerate() if t.name.startswith("foundry-")])

def request():
    fx = foundry.connect(sys.argv[1])
    fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2})
    fx.cache.set("k", 1)
    return pool_threads()

print(request(), pool_threads(), flush=True)
dispatcher = foundry.connect(sys.argv[1]).dispatcher(registry)
job_id = dispatcher.dispatch(add, {"a": 1, "b": 2})
kept = pool_threads()
del dispatcher
print(kept, pool_threads(), job_id, flush=True)
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
        cwd=ROOT,  # where the script imports tests.e2e.apps from
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


def test_a_dropped_connection_closes_its_pool_once_nothing_taken_from_it_is_left(
    queue: PostgresQueue, postgres_url: str
) -> None:
    env = {**os.environ, "DATABASE_SCHEMA": queue.schema}

    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _DROPPED, postgres_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    dropped, kept = (line.split() for line in done.stdout.splitlines())
    assert int(dropped[0]) > 0
    assert int(dropped[1]) == 0
    assert int(kept[0]) > 0  # the kept dispatcher's pool lives
    assert int(kept[1]) == 0
    assert queue.get(kept[2]) is not None
    assert done.stderr == ""


def test_a_second_event_loop_closes_the_first_loops_connection(
    queue: PostgresQueue, postgres_url: str, recwarn: pytest.WarningsRecorder
) -> None:
    settings = foundry.Settings(database_schema=queue.schema).on(postgres_url)
    connected = psycopg_sessions(postgres_url)
    gc.collect()  # what earlier tests of this process left warns now, not below
    recwarn.clear()

    with foundry.connect(settings) as fx:
        dispatcher = fx.async_dispatcher(registry)

        async def request(n: int) -> str:
            job_id = await dispatcher.dispatch(add, {"a": n, "b": 1})
            await fx.async_queue.wait(job_id, timedelta(milliseconds=20))  # listens too
            return job_id

        # An async view under WSGI: each request runs in an event loop of its own.
        ids = [asyncio.run(request(n)) for n in range(3)]
        gc.collect()
        during = psycopg_sessions(postgres_url) - connected

    unclosed = [w for w in recwarn if issubclass(w.category, ResourceWarning)]
    assert all(queue.get(job_id) is not None for job_id in ids)
    assert during <= 2  # the last loop's connection and its listening one only
    assert unclosed == []


def psycopg_sessions(url: str) -> int:
    """How many sessions the server has open to the test database as ``foundry``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'foundry'"
        ).fetchone()
    assert row is not None
    count: int = row[0]
    return count
