"""The metrics' parts without a server: the pool observer, the backend collector, the extra."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.pool import Outcome
from foundry.domain import ConfigurationError, Job, JobState, RunAfter
from foundry.entrypoints.metrics.backend import BackendCollector
from foundry.entrypoints.metrics.pool import PoolMetrics
from foundry.entrypoints.metrics.server import MetricsServer
from foundry.ports import Lease, WorkerInfo
from tests.cli_support import container_for, invoke

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def lease_of(job: Job, clock: ManualClock, attempt: int = 1) -> Lease:
    return Lease(job, token="t", attempt=attempt, deadline=clock.now() + timedelta(seconds=30))


def labels(queue: str, name: str) -> frozenset[tuple[str, str]]:
    return frozenset({("queue", queue), ("job_name", name)})


def test_the_pool_metrics_count_lost_leases_stale_writes_and_releases_apart() -> None:
    clock = ManualClock()
    registry = CollectorRegistry()
    metrics = PoolMetrics(registry, ["known"], concurrency=3, pid=os.getpid())
    known = lease_of(Job("known", queue="q", created_at=clock.now()), clock)
    stray = lease_of(Job("not.registered", queue="q"), clock, attempt=2)

    metrics.job_started(known, 1, clock.now() + timedelta(seconds=2))
    metrics.job_started(stray, 2, clock.now())
    busy = samples_of(registry)[("foundry_pool_children_busy", frozenset())]
    metrics.job_finished(known, Outcome.abandoned("stale lease"), 1.0)
    metrics.job_finished(stray, Outcome.abandoned("fenced: its lease could not be renewed"), 0.5)
    metrics.job_finished(known, Outcome.released(), 0.0)

    samples = samples_of(registry)
    assert busy == 2
    assert samples[("foundry_pool_children_busy", frozenset())] == 0
    assert samples[("foundry_jobs_lease_lost_total", labels("q", "known"))] == 1
    assert samples[("foundry_jobs_lease_lost_total", labels("q", "other"))] == 1
    assert samples[("foundry_jobs_released_total", labels("q", "known"))] == 1
    assert samples[("foundry_stale_completions_total", frozenset({("queue", "q")}))] == 1
    assert samples[("foundry_job_wait_seconds_sum", frozenset({("queue", "q")}))] == 2.0
    assert samples[("foundry_job_wait_seconds_count", frozenset({("queue", "q")}))] == 1
    assert ("foundry_job_runtime_seconds_count", labels("q", "known")) not in samples
    assert samples[("foundry_pool_concurrency", frozenset())] == 3


def test_the_pool_metrics_count_recycled_children_and_renewed_leases() -> None:
    registry = CollectorRegistry()
    metrics = PoolMetrics(registry, [], concurrency=2, pid=os.getpid())

    metrics.child_recycled(101, "max tasks")
    metrics.child_recycled(102, "RSS 612 MiB")
    metrics.child_recycled(103, "max tasks")
    metrics.leases_renewed(kept=3, lost=0)
    metrics.leases_renewed(kept=1, lost=2)

    samples = samples_of(registry)
    recycled = "foundry_pool_children_recycled_total"
    assert samples[(recycled, frozenset({("limit", "max_tasks")}))] == 2
    assert samples[(recycled, frozenset({("limit", "max_memory")}))] == 1
    assert samples[("foundry_lease_renewals_total", frozenset({("result", "renewed")}))] == 4
    assert samples[("foundry_lease_renewals_total", frozenset({("result", "lost")}))] == 2


def test_the_backend_collector_reads_sizes_ages_totals_and_workers_through_the_ports() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", queue="one"))
    queue.enqueue(Job("b", queue="two", schedule=RunAfter(timedelta(minutes=1))))
    queue.enqueue(Job("c", queue="two", after=(queue.jobs("two", JobState.DELAYED)[0].job.id,)))
    clock.advance(timedelta(seconds=7))
    info = WorkerInfo("w1", "h", 1, ("one",), 4, clock.now(), clock.now())
    queue.heartbeat(info, timedelta(minutes=1))
    registry = CollectorRegistry()
    registry.register(BackendCollector(queue, queue))

    samples = samples_of(registry)

    def one(name: str, **extra: str) -> float:
        return samples[(name, frozenset(extra.items()))]

    assert one("foundry_queue_jobs", queue="one", state="ready") == 1
    assert one("foundry_queue_jobs", queue="two", state="delayed") == 1
    assert one("foundry_queue_jobs", queue="two", state="waiting") == 1
    assert one("foundry_queue_oldest_ready_age_seconds", queue="one") == 7
    assert one("foundry_queue_oldest_ready_age_seconds", queue="two") == 0
    assert one("foundry_queue_completed_total", queue="one") == 0
    assert (one("foundry_workers"), one("foundry_worker_children")) == (1, 4)
    assert one("foundry_backend_up") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "--port", "0"],
        ["work", "--app", "tests.e2e.observed:registry", "--metrics-port", "0", "--burst"],
    ],
)
def test_without_the_metrics_extra_the_commands_exit_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    queue = MemoryQueue(ManualClock())
    box = container_for(queue, ManualClock())

    result = invoke(box, *args)

    assert result.exit_code == 2, result.output
    assert "pip install 'foundry[metrics]'" in result.output


def test_every_metric_the_grafana_dashboard_queries_is_one_foundry_exports() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a"))
    registry = CollectorRegistry()
    registry.register(BackendCollector(queue, queue))
    metrics = PoolMetrics(registry, ["a"], concurrency=1, pid=os.getpid())
    lease = lease_of(Job("a", created_at=clock.now()), clock)
    metrics.job_started(lease, 1, clock.now())
    metrics.job_finished(lease, Outcome.abandoned("stale lease"), 0.1)
    exported = {name for family in registry.collect() for name in _series_names(family)}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    used = {name for query in queries for name in re.findall(r"foundry_[a-z_]+", query)}

    assert len(dashboard["panels"]) >= 10
    assert used - exported == set()


def test_every_metric_foundry_exports_is_in_the_docs_table() -> None:
    registry = CollectorRegistry()
    registry.register(BackendCollector(MemoryQueue(ManualClock()), MemoryQueue(ManualClock())))
    PoolMetrics(registry, [], concurrency=1, pid=os.getpid())
    documented = set(re.findall(r"^\| `(foundry_[a-z_]+)`", _docs(), re.MULTILINE))

    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
    }

    assert exported - documented == set()
    assert documented - exported == set()


def _docs() -> str:
    return (ROOT / "docs" / "metrics.md").read_text()


def _series_names(family: Metric) -> list[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    return [family.name + suffix for suffix in suffixes.get(family.type, [""])]


@pytest.mark.parametrize(
    ("host", "named"), [("nosuchhost.invalid", "--host"), ("127.0.0.1", "--port")]
)
def test_a_bind_that_fails_names_the_address_and_the_option_to_change(
    host: str, named: str
) -> None:
    taken = MetricsServer(CollectorRegistry(), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigurationError) as raised:
            MetricsServer(CollectorRegistry(), host, taken.port)
    finally:
        taken.stop()

    assert f"{host}:{taken.port}" in str(raised.value)
    assert named in str(raised.value)
