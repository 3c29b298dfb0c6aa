"""A pool's metrics: a ``PoolObserver`` that counts every attempt, in the pool's parent.

The parent sees every outcome (children only run handlers), so one process holds the counters
and no multiprocess directory is needed. Labels are bounded: ``queue`` is one of the pool's
queues, ``job_name`` a handler of its registry (``other`` for any name the registry lacks);
never a job id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from foundry.application.pool import Outcome, OutcomeKind
from foundry.ports import Lease

#: Run times and waits of background jobs span milliseconds to many minutes.
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)  # fmt: skip
OTHER = "other"
#: The reason the pool gives when the queue refused a completion or failure as stale.
STALE_LEASE = "stale lease"
_LABELS = ("queue", "job_name")
_ENDED = {
    OutcomeKind.COMPLETED: "completed",
    OutcomeKind.RETRIED: "retried",
    OutcomeKind.DEAD: "dead",
    OutcomeKind.RELEASED: "released",
    OutcomeKind.ABANDONED: "lease_lost",
    OutcomeKind.CANCELLED: "cancelled",
}


class _Children:
    """The pool's live child processes, counted at each scrape (a collector)."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)

    def collect(self) -> Iterator[Metric]:
        alive = sum(1 for child in self._process.children() if _alive(child))
        yield GaugeMetricFamily(
            "foundry_pool_children", "Child processes of this pool alive now.", alive
        )


def _alive(child: psutil.Process) -> bool:
    try:
        return child.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # it exited (and was reaped) since the listing
        return False


class PoolMetrics:
    """Counters and histograms of one pool, registered in ``registry``.

    A ``PoolObserver``: the pool calls it on its loop, between jobs; each call costs a few
    dictionary lookups and counter increments.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        job_names: Iterable[str],
        *,
        concurrency: int,
        pid: int,
    ) -> None:
        self._names = frozenset(job_names)
        self._running: set[str] = set()

        def counter(name: str, documentation: str) -> Counter:
            return Counter(f"foundry_jobs_{name}", documentation, _LABELS, registry=registry)

        self._started = counter("started", "Attempts handed to a child.")
        self._ended = {kind: counter(name, _HELP[name]) for kind, name in _ENDED.items()}
        self._failed = counter("failed", "Attempts whose handler raised (retried or dead).")
        self._stale = Counter(
            "foundry_stale_completions",
            "Completions and failures the queue refused because the lease had lapsed "
            "(the job runs again).",
            ["queue"],
            registry=registry,
        )
        self._runtime = Histogram(
            "foundry_job_runtime_seconds",
            "Time an attempt ran in a child (completed, retried or dead).",
            _LABELS,
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self._wait = Histogram(
            "foundry_job_wait_seconds",
            "From enqueue (or the scheduled run time) to the start of a job's first attempt.",
            ["queue"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        Gauge(
            "foundry_pool_children_busy", "Children running a job now.", registry=registry
        ).set_function(lambda: len(self._running))
        Gauge(
            "foundry_pool_concurrency", "Child processes this pool keeps.", registry=registry
        ).set(concurrency)
        registry.register(_Children(pid))
        self._recycled = Counter(
            "foundry_pool_children_recycled",
            "Children replaced after a job for reaching --max-tasks-per-child or "
            "--max-memory-per-child.",
            ["limit"],
            registry=registry,
        )
        self._renewals = Counter(
            "foundry_lease_renewals",
            "Leases the pool's batched renews kept (renewed) or found lost (lost).",
            ["result"],
            registry=registry,
        )

    def _name(self, lease: Lease) -> str:
        name = lease.job.name
        return name if name in self._names else OTHER

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """Count the start; the first attempt's wait since its run time is observed."""
        self._started.labels(lease.queue, self._name(lease)).inc()
        self._running.add(lease.job_id)
        job = lease.job
        if lease.attempt == 1 and job.created_at is not None:
            waited = (started_at - job.run_at(job.created_at)).total_seconds()
            self._wait.labels(lease.queue).observe(max(waited, 0.0))

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Count a recycled child by the limit it reached (a bounded label)."""
        self._recycled.labels("max_tasks" if reason == "max tasks" else "max_memory").inc()

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Count the leases one batched renew kept and lost."""
        self._renewals.labels("renewed").inc(kept)
        self._renewals.labels("lost").inc(lost)

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """Count how the attempt ended; run times of attempts that ran a handler."""
        labels = (lease.queue, self._name(lease))
        kind = outcome.kind
        self._ended[kind].labels(*labels).inc()
        if kind is OutcomeKind.RETRIED or kind is OutcomeKind.DEAD:
            self._failed.labels(*labels).inc()
        if kind is OutcomeKind.ABANDONED and (outcome.reason or "").startswith(STALE_LEASE):
            self._stale.labels(lease.queue).inc()
        self._running.discard(lease.job_id)
        if kind in _RAN:
            self._runtime.labels(*labels).observe(runtime_s)


_RAN = frozenset({OutcomeKind.COMPLETED, OutcomeKind.RETRIED, OutcomeKind.DEAD})
_HELP = {
    "completed": "Attempts whose handler returned.",
    "retried": "Failed attempts that will run again.",
    "dead": "Jobs that went to the dead letters.",
    "released": "Jobs given back unfinished without spending the attempt (shutdown).",
    "cancelled": "Running jobs stopped by a cancel (they do not run again).",
    "lease_lost": (
        "Attempts the pool abandoned without the queue taking a write of their end (the queue "
        "returns the job unless an unconfirmed earlier write was applied)."
    ),
}
