"""A fault test that fails on purpose with workers running; ``test_no_worker_outlives`` runs
it in a pytest of its own (the name keeps it out of ordinary collection) and then looks for
what it started. It writes ``<pid> <create time>`` of every process it saw to the file that
``FOUNDRY_LEFTOVER_PIDS`` names."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psutil
import redis

from foundry.adapters.redis.queue import RedisQueue
from tests.backends import unique_prefix
from tests.faults.harness import Rig
from tests.faults.pool_scenario import Scenario
from tests.faults.redis_workers import MakeWorkers, wait_for

PIDS_ENV = "FOUNDRY_LEFTOVER_PIDS"


def test_a_fault_test_fails_while_its_workers_run(
    tmp_path: Path, redis_url: str, make_workers: MakeWorkers, make_rig: Callable[[str], Rig]
) -> None:
    prefix = unique_prefix("leftover")
    scenario = Scenario(tmp_path, 0, RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix))
    scenario.produce([scenario.job("stubborn", payload={"seconds": 120.0})])
    worker = make_workers(redis_url, prefix, 30).start()
    rig = make_rig(redis_url)
    stopped = rig.start_worker()
    rig.wait_ready()
    wait_for(lambda: len(_below(stopped.pid)) == 2, 60, "the stopped worker's children")
    stopped.pause()  # a stopped parent, as F3 leaves one while it waits
    # The stubborn job's child ignores SIGTERM and runs a grandchild in its own group.
    wait_for(lambda: _grandchild(scenario) is not None, 60, "the stubborn job's grandchild")
    wait_for(lambda: len(_below(worker.pid)) == 3, 60, "the other child")

    seen = {worker.pid, stopped.pid, *_below(worker.pid), *_below(stopped.pid)}
    assert _grandchild(scenario) in seen
    with Path(os.environ[PIDS_ENV]).open("w") as out:
        for pid in seen:
            out.write(f"{pid} {psutil.Process(pid).create_time()}\n")
    raise AssertionError("failing on purpose, with every process above still running")


def _below(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _grandchild(scenario: Scenario) -> int | None:
    notes = [e for e in scenario.ledger.events() if e.get("what") == "grandchild"]
    return int(notes[0]["pid"]) if notes else None
