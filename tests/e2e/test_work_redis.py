"""``foundry work --burst`` as a separate process drains jobs dispatched through the Dispatcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.apps import load_app
from tests.e2e.apps import QUEUE
from tests.e2e.burst_drain import drains_exactly_once
from tests.e2e.test_demo import run_foundry, unique_prefix
from tests.process_support import kill_tree, spawn
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]
WORK = ("work", "--app", "tests.e2e.apps:registry", "--burst")


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def queue(redis_url: str, prefix: str) -> Iterator[RedisQueue]:
    client = redis.Redis.from_url(redis_url)
    yield RedisQueue(client, prefix=prefix)
    client.close()


@pytest.mark.parametrize("prefetch", ["0", "8"])
def test_work_burst_drains_dispatched_jobs_exactly_once(
    redis_url: str, prefix: str, queue: RedisQueue, tmp_path: Path, prefetch: str
) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    drains_exactly_once(queue, env, tmp_path, prefetch)


def test_work_on_redis_with_a_bad_queue_name_exits_2(redis_url: str, prefix: str) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    result = run_foundry(
        "work", "--app", "tests.e2e.apps:registry", "--burst", "--queues", "a,{b}", env=env
    )

    assert result.returncode == 2
    assert "queue" in result.stderr


def test_handlers_use_the_containers_cache_from_the_children(
    redis_url: str, prefix: str, queue: RedisQueue
) -> None:
    dispatcher = Dispatcher(queue, load_app("tests.e2e.apps:with_cache"), SystemClock())
    dispatcher.dispatch_many([("e2e.count", {}) for _ in range(20)])
    env = {
        "QUEUE_DRIVER": "redis",
        "CACHE_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "CACHE_PREFIX": f"{prefix}_cache",
    }

    result = run_foundry(
        "work", "--app", "tests.e2e.apps:with_cache", "--burst", "--concurrency", "2", env=env
    )

    assert result.returncode == 0, result.stdout + result.stderr
    cache = RedisCache(redis.Redis.from_url(redis_url), prefix=f"{prefix}_cache")
    assert cache.get("runs") == 20
    assert queue.stats(QUEUE).completed == 20


def test_a_handler_failing_with_text_utf8_cannot_carry_dies_alone_and_the_worker_lives_on(
    redis_url: str, prefix: str, queue: RedisQueue, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(queue, load_app("tests.e2e.apps:registry"), SystemClock())
    failing = dispatcher.dispatch("e2e.unreadable")
    after = dispatcher.dispatch("e2e.add", {"a": 1, "b": 2})
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}
    env["FOUNDRY_E2E_LEDGER"] = str(tmp_path / "ledger")

    result = run_foundry(*WORK, "--concurrency", "1", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    [letter] = queue.dead(QUEUE)
    assert letter.job.id == failing
    assert letter.errors[0].message == "no such file: report-\\udcff.csv"
    assert queue.get(after).result == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(("cache", "noted"), [("memory", True), ("redis", False)])
def test_a_worker_says_when_its_children_each_have_a_cache_of_their_own(
    redis_url: str, prefix: str, cache: str, noted: bool
) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    result = run_foundry(*WORK, env={**env, "CACHE_DRIVER": cache})

    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert ("each child of this worker has a cache of its own" in said) is noted


def test_work_against_a_redis_unreachable_past_its_wait_exits_3_at_startup(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": server.url}
    result = run_foundry(*WORK, "--wait-for-backend", "0", env=env)
    waited = run_foundry(*WORK, "--wait-for-backend", "8", env=env)

    assert result.returncode == 3
    assert "check REDIS_URL" in result.stderr
    assert "waiting for the backend" not in result.stderr
    assert waited.returncode == 3
    assert "waiting for the backend" in waited.stderr


def test_a_worker_started_before_its_redis_waits_for_it_and_drains_the_queue(
    redis_server_factory: Callable[..., RedisServer], prefix: str, tmp_path: Path
) -> None:
    server = redis_server_factory()
    server.kill()
    ledger = tmp_path / "ledger"
    env = {**os.environ, "REDIS_URL": server.url, "QUEUE_PREFIX": prefix}
    env["FOUNDRY_E2E_LEDGER"] = str(ledger)
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = spawn(
            [sys.executable, "-m", "foundry.entrypoints.cli", *WORK, "--concurrency", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"waiting for the backend" not in log.read_bytes():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        server.start()
        queue = RedisQueue(server.client(), prefix=prefix)
        Dispatcher(queue, load_app("tests.e2e.apps:registry"), SystemClock()).dispatch_many(
            [("e2e.add", {"a": n, "b": 1}) for n in range(3)]
        )
        code = worker.wait(timeout=60)
    finally:
        kill_tree(worker)

    assert code == 0, log.read_text()
    assert queue.stats(QUEUE).completed == 3
    assert sorted(ledger.read_text().splitlines()) == ["add 0 1", "add 1 1", "add 2 1"]
