"""Screenshots of every dashboard page, for the docs: ``python -m tests.e2e.dashboard_shots DIR``.

The scene is simulated so the charts have an hour to show and the pages hold no detail of the
machine that took them: a memory queue on a manual clock lives through an hour of traffic
(sampled every 5 s, as the dashboard does), with made-up workers and error histories. The
dashboard itself is the real app, served by uvicorn and shot by headless Chromium.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import uvicorn

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.registry import JobRegistry
from foundry.application.schedules.scheduler import Scheduler
from foundry.domain import Dead, ErrorInfo, Job, Retry
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.history import Sampler
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.ports import ClaimRequest, ScheduleEntry, WorkerInfo
from tests.e2e.browser import chromium
from tests.redis_server import free_port

STEP = timedelta(seconds=5)
QUEUES = {"emails": 40, "billing": 12, "reports": 3, "webhooks": 25}
TRACEBACK = """Traceback (most recent call last):
  File "shop/billing.py", line 88, in charge_invoice
    receipt = gateway.charge(invoice.customer_id, invoice.total)
  File "shop/gateway.py", line 41, in charge
    raise GatewayDeclined(reply["code"], reply["message"])
shop.gateway.GatewayDeclined: card_declined: insufficient funds
"""


def simulate(queue: MemoryQueue, clock: ManualClock, sampler: Sampler) -> str:
    """An hour of traffic; returns the id of a dead letter worth showing."""
    rng = Random(7)
    shown = ""
    for step in range(int(timedelta(hours=1) / STEP)):
        wave = 1 + 0.6 * math.sin(step / 90)
        for name, rate in QUEUES.items():
            count = rng.randint(0, max(1, int(rate * wave / 6)))
            queue.enqueue_many([Job(f"{name}.send", queue=name) for _ in range(count)])
            capacity = count + 2
            if name == "reports":  # its worker is down for 12 minutes, then catches up
                capacity = 0 if 300 <= step < 450 else count + 1
            leases = (
                queue.claim(ClaimRequest([name], lease=timedelta(minutes=5), limit=capacity))
                if capacity
                else []
            )
            for lease in leases:
                roll = rng.random()
                if roll < 0.01 and name == "billing":
                    error = ErrorInfo(
                        "shop.gateway.GatewayDeclined",
                        "card_declined: insufficient funds",
                        TRACEBACK,
                        attempt=lease.attempt,
                        at=clock.now(),
                        worker="web-2:4188:5c1e9a",
                    )
                    queue.fail(lease, error, Dead("gave up: card declined"))
                    shown = lease.job_id
                elif roll < 0.05:
                    error = ErrorInfo("builtins.TimeoutError", "upstream took 30 s", attempt=1)
                    queue.fail(lease, error, Retry(timedelta(seconds=20)))
                else:
                    queue.complete(lease)
        clock.advance(STEP)
        sampler.sample()
    return shown


def schedules() -> JobRegistry:
    """A few periodic schedules, as an app declares them."""
    registry = JobRegistry()
    for name, queue, options in [
        ("reports.nightly", "reports", {"cron": "0 3 * * *", "tz": "Europe/Paris"}),
        ("emails.digest", "emails", {"every": timedelta(minutes=15)}),
        ("billing.reconcile", "billing", {"cron": "30 * * * *"}),
        ("webhooks.retry_stale", "webhooks", {"every": timedelta(minutes=5)}),
    ]:
        registry.job(name=name, queue=queue)(lambda: None)
        registry.schedule(name, name, queue=queue, **options)  # type: ignore[arg-type]
    return registry


def workers(queue: MemoryQueue, clock: ManualClock) -> None:
    """Three live pools."""
    now = clock.now()
    for index, (host, queues, children) in enumerate(
        [
            ("web-1", ("emails", "webhooks"), 8),
            ("web-2", ("billing",), 4),
            ("batch-1", ("reports",), 2),
        ]
    ):
        info = WorkerInfo(
            f"{host}:{4100 + index}:{index:06x}",
            host,
            4100 + index,
            queues,
            children,
            now - timedelta(hours=3, minutes=index * 17),
            now - timedelta(seconds=index + 1),
            processed=48_000 // (index + 1),
            failed=900 // (index + 1),
            retried=860 // (index + 1),
            dead=40 // (index + 1),
            mean_runtime_ms=[38.0, 210.0, 4_800.0][index],
        )
        queue.heartbeat(info, timedelta(minutes=5))


def main(folder: Path) -> None:
    """Simulate, serve, shoot each page into ``folder``."""
    clock = ManualClock(datetime(2030, 3, 4, 9, 0, tzinfo=UTC))
    queue = MemoryQueue(clock)
    sampler = Sampler(queue, clock, STEP)
    scheduler = Scheduler(queue, schedules())
    scheduler.step()  # stores them; a release that dropped one left it orphaned:
    queue.sync_schedules(
        [ScheduleEntry("legacy.cleanup", "reports", "every 1:00:00", clock.now())], redefine=False
    )
    queue.orphan("reports", ["legacy.cleanup"])
    dead_id = simulate(queue, clock, sampler)
    scheduler.step()  # the hour's latest ticks
    queue.pause_schedule("billing", "billing.reconcile")
    queue.enqueue_many([Job("reports.build", queue="reports") for _ in range(30)])
    workers(queue, clock)
    for worker, name, count in [
        ("web-1:4100:000000", "emails", 5),
        ("batch-1:4102:000002", "reports", 2),
    ]:
        queue.enqueue_many([Job(f"{name}.send", queue=name) for _ in range(count)])
        queue.claim(ClaimRequest([name], lease=timedelta(minutes=5), limit=count, worker=worker))
    sampler.sample()
    config = DashboardConfig(GuardConfig(token=None), every=STEP, backend="redis", background=False)
    app = create_app(queue, queue, queue, clock, config, sampler=sampler)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    folder.mkdir(parents=True, exist_ok=True)
    pages = {
        "queues": "/queues",
        "queue": "/queues/reports",
        "workers": "/workers",
        "dead": "/dead",
        "job": f"/jobs/{dead_id}",
        "schedules": "/schedules",
    }
    try:
        with chromium() as browser:
            for name, path in pages.items():
                browser.get(f"http://127.0.0.1:{port}{path}")
                browser.save_screenshot(str(folder / f"{name}.png"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
