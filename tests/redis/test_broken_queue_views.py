"""One queue's data broken (a key of the wrong type) does not take the dashboard or the
backend metrics down: the other queues are shown, the broken one is named with its key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Dead, ErrorInfo, Job, QueueBroken
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.entrypoints.metrics.backend import BackendCollector
from foundry.entrypoints.settings import Settings
from foundry.ports import ClaimRequest, WorkerInfo
from tests.backends import LEASE, unique_prefix
from tests.cli_support import container_for, invoke
from tests.unit.test_metrics import samples_of

pytestmark = pytest.mark.redis


@pytest.fixture
def broken_b(redis_url: str, clock: ManualClock) -> Iterator[RedisQueue]:
    """A Redis queue with a job in each of ``b`` and ``c``, ``b``'s ready set a string."""
    prefix = unique_prefix("brokenview")
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", queue="b", priority=1), Job("t", queue="c")])
    client.set(f"{prefix}:{{b}}:ready", "x")
    yield queue
    client.close()


def test_reading_every_queue_at_once_names_the_broken_one(broken_b: RedisQueue) -> None:
    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string, not a zset") as raised:
        broken_b.stats_many(["b", "c"])

    assert raised.value.queue == "b"


def _dashboard(queue: RedisQueue, clock: ManualClock) -> TestClient:
    config = DashboardConfig(GuardConfig(token=None), background=False)
    app = create_app(queue, queue, queue, clock, config, batches=queue)
    return TestClient(app, base_url="http://127.0.0.1:8080")


def test_the_dashboard_shows_the_other_queues_and_names_the_broken_one(
    broken_b: RedisQueue, clock: ManualClock
) -> None:
    clock.advance(timedelta(seconds=3))
    with _dashboard(broken_b, clock) as client:
        listed = client.get("/api/queues")
        page = client.get("/queues")
        one = client.get("/api/queues/b")
        history = client.get("/api/queues/b/history")

    assert listed.status_code == 200, listed.text
    rows = {row["queue"]: row for row in listed.json()["queues"]}
    assert (rows["c"]["ready"], rows["c"]["oldest_ready_age_s"]) == (1, 3.0)
    assert "{b}:ready is a string" in rows["b"]["broken"]
    assert page.status_code == 200, page.text
    assert 'data-queue="c"' in page.text
    assert "{b}:ready is a string" in page.text
    assert one.status_code == 500
    assert "{b}:ready is a string" in one.json()["error"]
    assert "unreachable" not in one.json()["error"]
    assert history.status_code == 200  # kept by the dashboard, whatever the backend holds


def test_the_backend_metrics_serve_the_other_queues_and_flag_the_broken_one(
    broken_b: RedisQueue,
) -> None:
    registry = CollectorRegistry()
    registry.register(BackendCollector(broken_b, broken_b))

    samples = samples_of(registry)

    assert samples[("foundry_backend_up", frozenset())] == 1
    ready_c = frozenset({("queue", "c"), ("state", "ready")})
    assert samples[("foundry_queue_jobs", ready_c)] == 1
    assert samples[("foundry_queue_broken", frozenset({("queue", "b")}))] == 1
    assert samples[("foundry_queue_broken", frozenset({("queue", "c")}))] == 0
    assert not any(
        dict(labels).get("queue") == "b"
        for name, labels in samples
        if name != "foundry_queue_broken"
    )


def test_the_stats_table_keeps_its_columns_for_a_broken_queue(
    broken_b: RedisQueue, clock: ManualClock
) -> None:
    shown = invoke(container_for(broken_b, clock, Settings()), "stats")

    header = next(line for line in shown.stdout.splitlines() if "queue" in line and "┃" in line)
    broken_row = next(line for line in shown.stdout.splitlines() if "broken" in line)
    assert header.rstrip().endswith("stale ┃")
    assert broken_row.count("│") == header.count("┃")


def _b_dead_set_broken(redis_url: str, clock: ManualClock) -> tuple[RedisQueue, redis.Redis, str]:
    """A dead letter in each of ``b`` and ``c``, then ``b``'s dead set made a string."""
    prefix = unique_prefix("brokendead")
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", id="b1", queue="b"), Job("t", id="c1", queue="c")])
    for name in ("b", "c"):
        [lease] = queue.claim(ClaimRequest([name], lease=LEASE))
        queue.fail(lease, ErrorInfo("builtins.ValueError", "no"), Dead("gave up"))
    client.delete(f"{prefix}:{{b}}:dead")
    client.set(f"{prefix}:{{b}}:dead", "x")
    return queue, client, prefix


def test_the_dead_letters_of_the_other_queues_are_listed_around_a_broken_one(
    redis_url: str, clock: ManualClock
) -> None:
    queue, client, _ = _b_dead_set_broken(redis_url, clock)

    with _dashboard(queue, clock) as dashboard:
        every = dashboard.get("/api/dead")
        page = dashboard.get("/dead")
        one = dashboard.get("/api/dead?queue=b")
    client.close()

    assert every.status_code == 200, every.text
    assert [letter["job"]["id"] for letter in every.json()["letters"]] == ["c1"]
    assert "{b}:dead is a string" in every.json()["broken"][0]["broken"]
    assert page.status_code == 200
    assert "c1" in page.text
    assert "{b}:dead is a string" in page.text
    assert one.status_code == 500
    assert "{b}:dead is a string" in one.json()["error"]


def test_failed_list_shows_the_other_queues_letters_and_exits_1_naming_the_broken_one(
    redis_url: str, clock: ManualClock
) -> None:
    queue, client, _ = _b_dead_set_broken(redis_url, clock)

    listed = invoke(container_for(queue, clock, Settings()), "failed", "list")
    client.close()

    assert listed.exit_code == 1, listed.output
    assert "c1" in listed.stdout
    assert "{b}:dead is a string" in listed.stderr


def test_the_workers_page_shows_the_jobs_they_run_around_a_broken_queue(
    redis_url: str, clock: ManualClock
) -> None:
    queue, client, prefix = _b_dead_set_broken(redis_url, clock)
    queue.enqueue(Job("t", id="c2", queue="c"))
    info = WorkerInfo("h:1:ab", "h", 1, ("b", "c"), 2, clock.now(), clock.now())
    queue.heartbeat(info, timedelta(minutes=1))
    [lease] = queue.claim(ClaimRequest(["c"], lease=LEASE, worker="h:1:ab"))
    client.set(f"{prefix}:{{b}}:leases", "x")

    with _dashboard(queue, clock) as dashboard:
        listed = dashboard.get("/api/workers")
        page = dashboard.get("/workers")

    assert listed.status_code == 200, listed.text
    [worker] = listed.json()["workers"]
    assert [job["id"] for job in worker["running"]] == [lease.job_id]
    assert page.status_code == 200


def test_a_queue_whose_jobs_hash_is_broken_is_named_and_the_others_still_shown(
    redis_url: str, clock: ManualClock
) -> None:
    prefix = unique_prefix("brokenjobs")
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", queue="b", priority=1), Job("t", queue="c")])
    client.delete(f"{prefix}:{{b}}:jobs")
    client.set(f"{prefix}:{{b}}:jobs", "x")
    clock.advance(timedelta(seconds=3))
    registry = CollectorRegistry()
    registry.register(BackendCollector(queue, queue))

    with _dashboard(queue, clock) as dashboard:
        listed = dashboard.get("/api/queues")
    samples = samples_of(registry)
    shown = invoke(container_for(queue, clock, Settings()), "stats", "--json")
    client.close()

    assert listed.status_code == 200, listed.text
    rows = {row["queue"]: row for row in listed.json()["queues"]}
    assert rows["c"]["oldest_ready_age_s"] == 3.0
    assert "{b}:jobs is a string, not a hash" in rows["b"]["broken"]
    assert samples[("foundry_queue_broken", frozenset({("queue", "b")}))] == 1
    assert samples[("foundry_backend_up", frozenset())] == 1
    assert shown.exit_code == 1, shown.output
    rows = {row["queue"]: row for row in json.loads(shown.stdout)["queues"]}
    assert rows["c"]["oldest_ready_age_s"] == 3.0
    assert "{b}:jobs is a string" in rows["b"]["broken"]
