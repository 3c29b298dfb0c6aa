"""An app with limited handlers for ``foundry work --app tests.e2e.limits_app:registry``.

Each run appends ``<what> <key> <wall time>`` to the ledger named by ``FOUNDRY_E2E_LEDGER``,
so a test can count the runs of one key that overlapped and measure a rate.
"""

from __future__ import annotations

import os
import time

from foundry import JobRegistry

QUEUE = "limits"
LEDGER = "FOUNDRY_E2E_LEDGER"

registry = JobRegistry()


def _record(what: str, key: str) -> None:
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"{what} {key} {time.time():.6f}\n")


@registry.job(name="limits.hold", queue=QUEUE, concurrency=5, limit_key="tenant:{tenant}")
def hold(tenant: str, ms: int) -> None:
    """Hold one of the tenant's 5 slots for ``ms``."""
    _record("start", tenant)
    time.sleep(ms / 1000)
    _record("end", tenant)


@registry.job(name="limits.tick", queue=QUEUE, rate_limit="20/s", limit_key="api")
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
