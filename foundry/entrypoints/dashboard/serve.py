"""Running the dashboard with uvicorn, after the guard's bind check."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta

import uvicorn

from foundry.domain import ConfigurationError
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
    listening = _bound(host, port)
    shown = f"[{host}]" if ":" in host else host
    announce(f"http://{shown}:{listening.getsockname()[1]}/")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listening])


def _bound(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ``ConfigurationError`` naming the address if it
    cannot be had (taken, or not this machine's)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve the dashboard on {host}:{port} ({error.strerror or error}); "
            "choose another --port or --host, or free that one"
        ) from error
