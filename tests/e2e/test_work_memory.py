"""``foundry work --burst`` on the memory queue, in-process: the app fills the queue itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from tests.cli_support import container_for, invoke
from tests.e2e.apps import JOBS, LEDGER, QUEUE
from tests.e2e.test_demo import run_foundry


@pytest.mark.slow
def test_work_burst_drains_what_the_app_enqueued_and_exits_0(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()
    queue = MemoryQueue(SystemClock())
    container = container_for(queue, SystemClock())
    env = {LEDGER: str(ledger), JOBS: "30"}

    result = invoke(
        container,
        "work",
        "--app",
        "tests.e2e.apps:with_jobs",
        "--burst",
        "--concurrency",
        "2",
        env=env,
    )

    assert result.exit_code == 0, result.output
    assert sorted(ledger.read_text().splitlines()) == sorted(f"add {n} 1" for n in range(30))
    stats = queue.stats(QUEUE)
    assert (stats.completed, stats.pending, stats.active, stats.dead) == (30, 0, 0, 0)


def test_work_without_an_app_says_how_to_name_one(tmp_path: Path) -> None:
    container = container_for(MemoryQueue(SystemClock()), SystemClock())

    result = invoke(container, "work", "--burst")

    assert result.exit_code == 2
    assert "--app" in result.stderr


def test_work_with_an_app_that_does_not_import_exits_2_naming_it() -> None:
    container = container_for(MemoryQueue(SystemClock()), SystemClock())

    result = invoke(container, "work", "--app", "no_such_module:registry", "--burst")

    assert result.exit_code == 2
    assert "no_such_module" in result.stderr


def test_work_with_a_spec_without_colon_shows_the_expected_form() -> None:
    container = container_for(MemoryQueue(SystemClock()), SystemClock())

    result = invoke(container, "work", "--app", "tests.e2e.apps", "--burst")

    assert result.exit_code == 2
    assert "module:attribute" in result.stderr


def test_work_says_its_grace_as_people_read_durations() -> None:
    result = run_foundry(
        "work",
        "--app",
        "tests.e2e.apps:registry",
        "--burst",
        "--concurrency",
        "1",
        "--grace",
        "90",
        env={"QUEUE_DRIVER": "memory", "FOUNDRY_LOG_LEVEL": "INFO"},
    )

    assert result.returncode == 0, result.stderr
    assert "stopping: 0 job(s) running, grace 1m30s\n" in result.stderr
