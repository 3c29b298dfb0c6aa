"""Running the dashboard with uvicorn, after the guard's bind check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import uvicorn

from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig, check_bind, is_loopback
from foundry.ports import BatchPort, Clock, QueuePort, SchedulePort, WorkerRegistry


def serve(
    queue: QueuePort,
    workers: WorkerRegistry,
    schedules: SchedulePort,
    clock: Clock,
    *,
    host: str,
    port: int,
    token: str | None,
    every: timedelta,
    backend: str,
    announce: Callable[[str], None],
    batches: BatchPort | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. Raises ``ConfigurationError`` for a public bind without a
    token, before anything listens."""
    check_bind(host, token)
    guard = GuardConfig(token=token, loopback_only=is_loopback(host))
    config = DashboardConfig(guard, every=every, backend=backend)
    app = create_app(queue, workers, schedules, clock, config, batches=batches)
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{port}/")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
