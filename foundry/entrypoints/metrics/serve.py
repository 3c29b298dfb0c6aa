"""Wiring for the commands: a registry, its collectors and a started server.

prometheus-client is imported only here, after ``require`` checked the extra is installed,
so a missing extra is a clear message (exit 2), not an ImportError traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from foundry.entrypoints.extras import require
from foundry.ports import QueuePort, WorkerRegistry

if TYPE_CHECKING:
    from foundry.entrypoints.metrics.pool import PoolMetrics
    from foundry.entrypoints.metrics.server import MetricsServer


@attrs.frozen
class PoolMetricsServer:
    """The pool's observer and the server publishing what it counts."""

    observer: PoolMetrics
    server: MetricsServer


def pool_metrics(
    job_names: Iterable[str], concurrency: int, host: str, port: int
) -> PoolMetricsServer:
    """Serve a pool's metrics on ``host:port`` now; the observer to hand to the ``Pool``."""
    require("metrics", "--metrics-port", "prometheus_client")
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from foundry.entrypoints.metrics.pool import PoolMetrics  # noqa: PLC0415
    from foundry.entrypoints.metrics.server import MetricsServer  # noqa: PLC0415

    registry = CollectorRegistry()
    observer = PoolMetrics(registry, job_names, concurrency=concurrency, pid=os.getpid())
    return PoolMetricsServer(observer, MetricsServer(registry, host, port).start())


def backend_metrics(
    queue: QueuePort, workers: WorkerRegistry, host: str, port: int
) -> MetricsServer:
    """A server (not started) of the backend's gauges on ``host:port``."""
    require("metrics", "foundry metrics", "prometheus_client")
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from foundry.entrypoints.metrics.backend import BackendCollector  # noqa: PLC0415
    from foundry.entrypoints.metrics.server import MetricsServer  # noqa: PLC0415

    registry = CollectorRegistry()
    registry.register(BackendCollector(queue, workers))
    return MetricsServer(registry, host, port)
