"""``async def`` handlers in a real prefork pool: each child runs them on one event loop it
keeps, the soft limit cancels the task, the hard limit and SIGKILL end the child, and the
total-queue check holds as for sync handlers."""

from __future__ import annotations

import os
import random
from datetime import timedelta
from pathlib import Path

import pytest

from foundry.application.pool.config import PoolConfig
from foundry.domain import JobState
from tests.faults.pool_scenario import Scenario
from tests.faults.test_pool_faults import _gone

FAST_IDLE = timedelta(milliseconds=50)


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("FOUNDRY_FAULT_SEED", random.randrange(1 << 32)))


def _results(scenario: Scenario, ids: list[str]) -> list[str]:
    records = [scenario.queue.get(job_id) for job_id in ids]
    return [record.result for record in records if record is not None]


@pytest.mark.timeout(60)
def test_a_child_runs_its_async_handlers_on_one_loop_it_keeps(tmp_path: Path, seed: int) -> None:
    scenario = Scenario(tmp_path, seed)
    jobs = [scenario.job("awork", payload={"n": n}) for n in range(8)]
    scenario.produce(jobs)

    code = scenario.run(PoolConfig(concurrency=1, burst=True, idle_wait=FAST_IDLE))

    assert code == 0
    assert scenario.check().ok
    results = [result.split(":") for result in _results(scenario, [job.id for job in jobs])]
    assert len({pid for pid, _, _ in results}) == 1  # one child
    assert [(runs, n) for _, runs, n in results] == [(str(n + 1), str(n)) for n in range(8)]


@pytest.mark.timeout(60)
def test_a_coroutine_a_sync_wrapper_returns_runs_on_the_child_s_loop(
    tmp_path: Path, seed: int
) -> None:
    scenario = Scenario(tmp_path, seed)
    jobs = [
        scenario.job(name, payload={"n": n}) for n, name in enumerate(["awork.wrapped", "awork"])
    ]
    scenario.produce(jobs)

    code = scenario.run(PoolConfig(concurrency=1, burst=True, idle_wait=FAST_IDLE))

    assert code == 0
    assert scenario.check().ok
    results = [result.split(":") for result in _results(scenario, [job.id for job in jobs])]
    assert [(runs, n) for _, runs, n in results] == [("1", "0"), ("2", "1")]  # one loop


@pytest.mark.timeout(60)
def test_the_soft_limit_cancels_the_task_and_the_child_serves_the_next_job(
    tmp_path: Path, seed: int
) -> None:
    scenario = Scenario(tmp_path, seed)
    slow = scenario.job(
        "awork",
        attempts=1,
        timeout=timedelta(seconds=30),
        soft_timeout=timedelta(milliseconds=300),
        payload={"seconds": 20},
    )
    after = scenario.job("awork", payload={"n": 1})
    scenario.produce([slow, after])

    code = scenario.run(PoolConfig(concurrency=1, burst=True, idle_wait=FAST_IDLE))

    assert code == 0
    record, next_one = scenario.queue.get(slow.id), scenario.queue.get(after.id)
    assert record is not None
    assert next_one is not None
    assert record.state is JobState.DEAD
    assert record.errors[0].type == "foundry.application.errors.SoftTimeLimitExceeded"
    notes = [e for e in scenario.ledger.events() if e["ev"] == "note"]
    assert [(note["what"], note["job"]) for note in notes] == [("cancelled", slow.id)]
    assert next_one.state is JobState.COMPLETED
    assert next_one.result.startswith(f"{notes[0]['pid']}:")  # the same child went on


@pytest.mark.timeout(60)
def test_a_handler_that_blocks_its_loop_past_the_hard_limit_is_killed_and_retried(
    tmp_path: Path, seed: int
) -> None:
    scenario = Scenario(tmp_path, seed)
    # The second attempt must end by its soft limit, in a new child that a loaded
    # machine may starve for most of a second: the hard limit leaves it time.
    holding = scenario.job(
        "awork",
        attempts=2,
        timeout=timedelta(seconds=3),
        soft_timeout=timedelta(milliseconds=200),
        payload={"seconds": 20, "hold_on": [1]},
    )
    scenario.produce([holding, scenario.job("awork")])
    config = PoolConfig(burst=True, idle_wait=FAST_IDLE, term_grace=timedelta(milliseconds=500))

    code = scenario.run(config)

    assert code == 0
    record = scenario.queue.get(holding.id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.DEAD, 2)
    assert [error.type for error in record.errors] == [
        "foundry.application.errors.TimeLimitExceeded",
        "foundry.application.errors.SoftTimeLimitExceeded",
    ]
    assert _gone(scenario.starts(holding.id)[0]["pid"])


@pytest.mark.timeout(90)
def test_children_sigkilled_in_async_handlers_lose_nothing(tmp_path: Path, seed: int) -> None:
    scenario = Scenario(tmp_path, seed)
    doomed = set(random.Random(seed).sample(range(40), 6))
    jobs = [
        scenario.job(
            "awork", payload={"n": n, "seconds": 0.01, "kill_on": [1] if n in doomed else []}
        )
        for n in range(40)
    ]
    scenario.produce(jobs)

    code = scenario.run(PoolConfig(concurrency=2, burst=True, idle_wait=FAST_IDLE))

    assert code == 0
    report = scenario.check()
    assert report.ok, report.summary()
    assert report.completed == 40
    for n, job in enumerate(jobs):
        record = scenario.queue.get(job.id)
        assert record is not None
        assert record.attempts == (2 if n in doomed else 1)
        if n in doomed:
            assert record.errors[0].type == "foundry.application.errors.WorkerLost"
            assert record.errors[0].signal == 9
