"""An app with periodic schedules for the end-to-end tests: each run appends its job id (which
carries the tick) and attempt to the file named by ``FOUNDRY_E2E_LEDGER``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from foundry.application.context import current_job
from foundry.application.registry import JobRegistry

QUEUE = "ticks"
LEDGER = "FOUNDRY_E2E_LEDGER"

registry = JobRegistry()


@registry.periodic(every=1, name="every-second")
@registry.job(name="e2e.tick", queue=QUEUE)
def tick() -> None:
    """Record which tick's job ran."""
    job = current_job()
    assert job is not None
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"{job.job_id} {job.attempt}\n")


registry.schedule("daily-report", "e2e.tick", cron="0 6 * * *", tz="Europe/Berlin")


def ticks_of(lines: list[str]) -> list[int]:
    """The tick (whole seconds since the epoch) of each ledger line."""
    return [int(line.split()[0].rsplit("-", 1)[1]) // 1_000_000 for line in lines]


def wait_for_runs(ledger: Path, runs: int = 1, timeout: float = 60.0) -> None:
    """Wait until workers have run ``runs`` ticks: a loaded machine delays them, we do not."""
    deadline = time.monotonic() + timeout
    while len(ledger.read_text().splitlines()) < runs:
        assert time.monotonic() < deadline, f"fewer than {runs} ticks ran within {timeout} s"
        time.sleep(0.05)
