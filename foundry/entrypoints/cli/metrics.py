"""``foundry metrics``: the backend's queue gauges and live workers, for Prometheus."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import click

from foundry.entrypoints.cli import common


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=9108, show_default=True, help="Port to bind."
)
@click.pass_context
def metrics(ctx: click.Context, host: str, port: int) -> None:
    """Serve every queue's sizes, totals and oldest wait, and the live workers, on /metrics.

    One process scrapes the backend for the whole fleet (each `foundry work --metrics-port`
    serves its own pool's job counters). Needs foundry[metrics].
    """
    common.require_shared_queue(ctx, "foundry metrics")
    from foundry.entrypoints.metrics.serve import backend_metrics  # noqa: PLC0415

    server = backend_metrics(common.queue(ctx), common.workers(ctx), host, port)
    common.stderr().print(f"serving metrics on http://{host}:{server.port}/metrics")
    wait_for_signal(server.start().stop)


def wait_for_signal(stop: Callable[[], None]) -> None:
    """Block until SIGTERM or Ctrl-C, then call ``stop`` (the server runs on its thread)."""
    stopping = threading.Event()
    handlers = {
        signum: signal.signal(signum, lambda *_: stopping.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)
        stop()
