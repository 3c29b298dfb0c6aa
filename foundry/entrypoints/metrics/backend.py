"""The backend's gauges, read through the ports at each scrape (``foundry metrics``).

One scrape costs four calls whatever the number of queues: ``queues``, ``stats_many``,
``oldest_ready_age`` (of the queues with ready jobs) and ``workers``. If the backend cannot
be reached, ``foundry_backend_up`` is 0 and the queue families are left out, so alerts see
the outage rather than stale numbers. A queue whose data the backend refuses to read (a key of
the wrong type) is no outage: it is ``foundry_queue_broken`` 1 and the others are served (each
queue is then read alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from foundry.domain import FoundryError
from foundry.entrypoints.overview import Overview, read_queues
from foundry.ports import QueuePort, QueueStats, WorkerInfo, WorkerRegistry

_STATES = ("ready", "delayed", "waiting", "active", "dead")
_TOTALS = {
    "completed": "Jobs completed in this queue, all workers together.",
    "failed": "Failed attempts in this queue (retried or dead), all workers together.",
    "dead_trimmed": "Dead letters removed by the retention policy.",
    "stale_rejected": "Completions, failures or releases refused as stale (lease lapsed).",
}


class BackendCollector:
    """A prometheus-client collector of every queue's sizes and totals and the live workers."""

    def __init__(self, queue: QueuePort, workers: WorkerRegistry) -> None:
        self._queue = queue
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        """Read the backend now; yields ``foundry_backend_up`` first."""
        try:
            overview = read_queues(self._queue)
            workers = self._workers.workers()
        except FoundryError:
            yield GaugeMetricFamily("foundry_backend_up", "1 if the queue backend answered.", 0)
            return
        yield GaugeMetricFamily("foundry_backend_up", "1 if the queue backend answered.", 1)
        yield from _queue_families(overview.rows, overview.ages)
        yield _broken_family(overview)
        yield from _worker_families(workers)


def _queue_families(stats: list[QueueStats], ages: list[timedelta | None]) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "foundry_queue_jobs", "Jobs in the queue now, by state.", labels=["queue", "state"]
    )
    paused = GaugeMetricFamily(
        "foundry_queue_paused", "1 if claims skip the queue.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "foundry_queue_oldest_ready_age_seconds",
        "How long the longest-waiting ready job has waited (0 when none is ready).",
        labels=["queue"],
    )
    totals = {
        name: CounterMetricFamily(f"foundry_queue_{name}", text, labels=["queue"])
        for name, text in _TOTALS.items()
    }
    for row, age in zip(stats, ages, strict=True):
        for state in _STATES:
            jobs.add_metric([row.queue, state], getattr(row, state))
        paused.add_metric([row.queue], 1 if row.paused else 0)
        oldest.add_metric([row.queue], age.total_seconds() if age is not None else 0.0)
        for name, family in totals.items():
            family.add_metric([row.queue], getattr(row, name))
    yield from (jobs, paused, oldest, *totals.values())


def _broken_family(overview: Overview) -> Metric:
    broken = GaugeMetricFamily(
        "foundry_queue_broken",
        "1 if the backend refuses to read the queue's data (a key of the wrong type); its "
        "other series are left out.",
        labels=["queue"],
    )
    for row in overview.rows:
        broken.add_metric([row.queue], 0)
    for error in overview.broken:
        broken.add_metric([error.queue], 1)
    return broken


def _worker_families(workers: list[WorkerInfo]) -> Iterator[Metric]:
    yield GaugeMetricFamily("foundry_workers", "Live worker pools (by heartbeat).", len(workers))
    yield GaugeMetricFamily(
        "foundry_worker_children",
        "Child processes the live worker pools keep, all together.",
        sum(info.concurrency for info in workers),
    )
