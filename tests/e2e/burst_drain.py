"""One scenario for every backend: ``foundry work --burst`` as a separate process drains 40
jobs and a job that fails once, each exactly once."""

from __future__ import annotations

from pathlib import Path

from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.domain import JobState
from foundry.ports import QueuePort
from tests.e2e.apps import LEDGER, QUEUE, add, flaky, registry
from tests.e2e.test_demo import run_foundry


def drains_exactly_once(queue: QueuePort, env: dict[str, str], tmp: Path, prefetch: str) -> None:
    """Dispatch through ``queue``, drain with a worker configured by ``env``, check the ledger."""
    ledger = tmp / "ledger"
    ledger.touch()
    dispatcher = Dispatcher(queue, registry, SystemClock())
    ids = dispatcher.dispatch_many([(add, {"a": n, "b": 2}) for n in range(40)])
    ids.append(dispatcher.dispatch(flaky, {"key": "k1"}))

    result = run_foundry(
        "work",
        "--app",
        "tests.e2e.apps:registry",
        "--burst",
        "--concurrency",
        "2",
        "--prefetch",
        prefetch,
        env={**env, LEDGER: str(ledger)},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = ledger.read_text().splitlines()
    assert sorted(line for line in lines if line.startswith("add")) == sorted(
        f"add {n} 2" for n in range(40)
    )
    assert lines.count("flaky k1") == 2
    records = [queue.get(job_id, QUEUE) for job_id in ids]
    assert [r.state if r else None for r in records] == [JobState.COMPLETED] * 41
    assert [r.attempts if r else None for r in records[-1:]] == [2]
    stats = queue.stats(QUEUE)
    assert (stats.pending, stats.active, stats.dead) == (0, 0, 0)
