"""Which jobs ``foundry demo`` enqueues: mostly CPU-bound work, with a few twists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from foundry.entrypoints.demo.app import charge_cancelled_order, count_primes, flaky, hash_chain

#: Every job the demo expects to end dead is named here, with why.
EXPECTED_DEAD = {"demo.charge_cancelled_order": "PermanentFailure"}


@attrs.frozen
class Planned:
    """One job to dispatch: the handler, its payload, and an optional delay."""

    target: Any
    payload: dict[str, Any]
    delay: timedelta | None = None


def plan(jobs: int, ledger: str) -> list[Planned]:
    """``jobs`` jobs: 1 that always fails, ~5% flaky, ~4% delayed, the rest CPU-bound."""
    flaky_count = max(1, jobs // 20)
    delayed_count = max(1, jobs // 25)
    cpu_count = jobs - 1 - flaky_count - delayed_count
    planned = [_cpu(index) for index in range(cpu_count)]
    planned += [
        Planned(flaky, {"ledger": ledger, "key": f"flaky-{index}", "failures": 1 + index % 2})
        for index in range(flaky_count)
    ]
    planned += [
        Planned(count_primes, {"limit": 50_000}, timedelta(milliseconds=300 + 100 * (i % 8)))
        for i in range(delayed_count)
    ]
    planned.append(Planned(charge_cancelled_order, {"order_id": 4242}))
    return planned


def _cpu(index: int) -> Planned:
    if index % 2:
        return Planned(hash_chain, {"seed": f"job-{index}", "rounds": 20_000 + 97 * (index % 50)})
    return Planned(count_primes, {"limit": 100_000 + 1_000 * (index % 50)})
