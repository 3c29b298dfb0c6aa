"""Prometheus metrics of a real ``foundry work`` and of ``foundry metrics``, scraped over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from tests.backends import unique_prefix
from tests.e2e import observed
from tests.e2e.servers import answers, foundry_process, http_get, wait_for
from tests.redis_server import free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of the exposition at ``url``, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(http_get(url))
        for sample in family.samples
    }


def total(samples: Samples, kind: str) -> float:
    """``foundry_jobs_<kind>_total`` summed over its labels."""
    name = f"foundry_jobs_{kind}_total"
    return sum(number for (sample, _), number in samples.items() if sample == name)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (a KeyError names what is missing)."""
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def prefix() -> str:
    return unique_prefix("m")


@pytest.fixture
def queue(redis_url: str, prefix: str) -> Iterator[RedisQueue]:
    client = redis.Redis.from_url(redis_url)
    yield RedisQueue(client, prefix=prefix)
    client.close()


def test_a_workers_metrics_count_every_outcome_exactly(
    redis_url: str, prefix: str, queue: RedisQueue
) -> None:
    dispatcher = Dispatcher(queue, observed.registry, SystemClock())
    dispatcher.dispatch_many([(observed.ok, {"n": n}) for n in range(5)])
    dispatcher.dispatch(observed.flaky, {})
    dispatcher.dispatch(observed.doomed, {"note": "x"})
    dispatcher.dispatch(observed.slow, {"seconds": 1.5})  # held across a renew (every 1 s)
    port = free_port()
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "QUEUE_TIMEOUT": "3"}
    args = ("work", "--app", "tests.e2e.observed:registry", "--concurrency", "2")
    args += ("--max-tasks-per-child", "2")
    url = f"http://127.0.0.1:{port}/metrics"
    ended = ("completed", "dead")

    with foundry_process(*args, "--metrics-port", str(port), env=env):
        wait_for(lambda: answers(url), "the metrics server")

        # The pool counts an outcome once the queue took it: wait for the counters themselves,
        # and for the child replaced after the last job (a loaded machine forks it late).
        def settled() -> bool:
            now = scrape(url)
            outcomes = [total(now, kind) for kind in ended]
            return outcomes == [7, 1] and value(now, "foundry_pool_children") == 2

        wait_for(settled, "8 outcomes and both children alive")
        samples = scrape(url)

    q = observed.QUEUE
    counts = {
        kind: {
            name: value(samples, f"foundry_jobs_{kind}_total", queue=q, job_name=f"obs.{name}")
            for name in ("ok", "flaky", "doomed", "slow")
            if (f"foundry_jobs_{kind}_total", (("job_name", f"obs.{name}"), ("queue", q)))
            in samples
        }
        for kind in ("started", "completed", "failed", "retried", "dead")
    }
    assert counts == {
        "started": {"ok": 5, "flaky": 2, "doomed": 2, "slow": 1},
        "completed": {"ok": 5, "flaky": 1, "slow": 1},
        "failed": {"flaky": 1, "doomed": 2},
        "retried": {"flaky": 1, "doomed": 1},
        "dead": {"doomed": 1},
    }
    runs = value(samples, "foundry_job_runtime_seconds_count", queue=q, job_name="obs.ok")
    assert runs == 5
    assert value(samples, "foundry_job_wait_seconds_count", queue=q) == 8
    # 10 attempts, each child replaced after its second: 5 recycles, or 4 when the last two
    # attempts went to two fresh children.
    assert value(samples, "foundry_pool_children_recycled_total", limit="max_tasks") in (4, 5)
    assert value(samples, "foundry_lease_renewals_total", result="renewed") >= 1
    assert value(samples, "foundry_lease_renewals_total", result="lost") == 0
    assert value(samples, "foundry_pool_children") == 2
    assert value(samples, "foundry_pool_children_busy") == 0
    assert value(samples, "foundry_pool_concurrency") == 2
    assert not [key for key in samples if "job_id" in dict(key[1])]
    stats = queue.stats(q)
    assert (stats.completed, stats.dead, stats.failed) == (7, 1, 3)


def test_foundry_metrics_serves_every_queues_gauges_and_the_live_workers(
    redis_url: str, prefix: str, queue: RedisQueue
) -> None:
    dispatcher = Dispatcher(queue, observed.registry, SystemClock())
    dispatcher.dispatch_many([(observed.ok, {"n": n}) for n in range(3)])
    dispatcher.dispatch(observed.ok, {"n": 9}, queue="other", delay=timedelta(minutes=10))
    queue.pause("other")
    port = free_port()
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}

    with foundry_process("metrics", "--port", str(port), env=env):
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: answers(url), "the metrics server")
        samples = scrape(url)

    jobs = {
        (q, state): value(samples, "foundry_queue_jobs", queue=q, state=state)
        for q in (observed.QUEUE, "other")
        for state in ("ready", "delayed", "active", "dead")
    }
    assert jobs == {
        (observed.QUEUE, "ready"): 3,
        (observed.QUEUE, "delayed"): 0,
        (observed.QUEUE, "active"): 0,
        (observed.QUEUE, "dead"): 0,
        ("other", "ready"): 0,
        ("other", "delayed"): 1,
        ("other", "active"): 0,
        ("other", "dead"): 0,
    }
    assert value(samples, "foundry_queue_paused", queue="other") == 1
    assert value(samples, "foundry_queue_paused", queue=observed.QUEUE) == 0
    assert value(samples, "foundry_queue_oldest_ready_age_seconds", queue=observed.QUEUE) >= 0
    assert value(samples, "foundry_queue_completed_total", queue=observed.QUEUE) == 0
    assert value(samples, "foundry_backend_up") == 1
    assert value(samples, "foundry_workers") == 0
