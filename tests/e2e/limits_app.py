"""An app with limited handlers for ``foundry work --app tests.e2e.limits_app:registry``.

Each run appends ``<what> <key> <wall time>`` to the ledger named by ``FOUNDRY_E2E_LEDGER``,
so a test can count the runs of one key that overlapped. The worker's parent appends
``claim api <deadline>`` for each tick it hands out: the lease deadline its claim got, the
claim's time on the Redis server plus the lease (the same for every worker), so a test can
check a rate where the queue applies it, on one clock, whatever the children's delays.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from foundry import JobRegistry, Middleware
from foundry.ports import Lease

QUEUE = "limits"
LEDGER = "FOUNDRY_E2E_LEDGER"
#: The ticks' rate: at most this many starts per second.
TICK_RATE = 20

registry = JobRegistry()


def _record(what: str, key: str, at: float | None = None) -> None:
    at = time.time() if at is None else at
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"{what} {key} {at:.6f}\n")


class ClaimLedger(Middleware):
    """Records the claim of each tick handed to a child (in the worker's parent)."""

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        if lease.job.name == "limits.tick":
            _record("claim", "api", lease.deadline.timestamp())


registry.use(ClaimLedger())


@registry.job(name="limits.hold", queue=QUEUE, concurrency=5, limit_key="tenant:{tenant}")
def hold(tenant: str, ms: int) -> None:
    """Hold one of the tenant's 5 slots for ``ms``."""
    _record("start", tenant)
    time.sleep(ms / 1000)
    _record("end", tenant)


@registry.job(name="limits.tick", queue=QUEUE, rate_limit=f"{TICK_RATE}/s", limit_key="api")
def tick(n: int) -> None:
    """Start at the api's rate."""
    _record("tick", "api")


@registry.job(name="limits.stuck", queue=QUEUE, concurrency=2, limit_key="stuck")
def stuck(n: int) -> None:
    """Hold one of 2 slots: for a minute in a worker started with ``FOUNDRY_E2E_STUCK``
    (a test kills it), briefly elsewhere."""
    _record("start", "stuck")
    time.sleep(60 if os.environ.get("FOUNDRY_E2E_STUCK") else 0.1)
    _record("end", "stuck")
