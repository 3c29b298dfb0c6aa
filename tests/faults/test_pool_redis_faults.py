"""Whole-worker faults on Redis: ``foundry work`` processes killed from outside and inside.

Each ends with the total-queue check. Seeds are printed (FOUNDRY_FAULT_SEED replays one).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from foundry.adapters.redis.queue import RedisQueue
from foundry.application.pool.settle import BATCH_MAX
from foundry.domain import Job, JobState
from tests.backends import unique_prefix
from tests.faults.checker import Expectations, KilledWorker
from tests.faults.pool_scenario import Scenario
from tests.faults.redis_workers import (
    MakeWorkers,
    lease_deadlines,
    leases_of_the_dead,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("FOUNDRY_FAULT_SEED", random.randrange(1 << 32)))


def _queue(redis_url: str, stem: str) -> tuple[RedisQueue, str]:
    prefix = unique_prefix(stem)
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix), prefix


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_under(scenario: Scenario, parent: int) -> list[dict[str, Any]]:
    """Starts made in children of ``parent`` that have not ended."""
    events = scenario.ledger.events()
    ended = {(e["job"], e["pid"]) for e in events if e["ev"] == "end"}
    starts = [e for e in events if e["ev"] == "start" and e["ppid"] == parent]
    return [e for e in starts if (e["job"], e["pid"]) not in ended]


@pytest.mark.timeout(120)
def test_f2_a_killed_workers_children_die_and_its_jobs_rerun_elsewhere_after_the_lease(
    tmp_path: Path, seed: int, redis_url: str, make_workers: MakeWorkers
) -> None:
    lease_s = 3
    queue, prefix = _queue(redis_url, "f2")
    scenario = Scenario(tmp_path, seed, queue)
    jobs = [scenario.job("work", payload={"n": n, "seconds": 1.0}) for n in range(12)]
    scenario.produce(jobs)
    workers = make_workers(redis_url, prefix, lease_s)
    victim, survivor = workers.start(), workers.start()
    wait_for(lambda: len(_running_under(scenario, victim.pid)) == 2, 60, "the victim to run 2 jobs")

    in_flight = _running_under(scenario, victim.pid)
    held_until = lease_deadlines(redis_url, prefix, [e["job"] for e in in_flight])
    killed_at = time.time()
    victim.kill()
    victim.wait()
    reaped_at = time.time()
    # Renewed up to the kill: the deadlines only moved later (unless already reaped).
    held_until |= lease_deadlines(redis_url, prefix, held_until)
    wait_for(lambda: not any(_alive(e["pid"]) for e in in_flight), 30, "its children to exit")
    wait_for(lambda: queue.stats("default").completed == 12, 60, "every job to complete")
    codes = workers.stop_all()

    assert codes == [-9, 0], workers.log(1)
    # Their parent's death sent them SIGKILL (PR_SET_PDEATHSIG) before it could be reaped: they
    # ran no more code, though their jobs had time left and their self-fencing would wait for
    # the lease (however long a loaded machine kept them from the CPU).
    children = {e["pid"] for e in in_flight}
    assert not [
        e for e in scenario.ledger.events() if e.get("pid") in children and e["t"] > reaped_at
    ]
    report = scenario.check(Expectations(check_overlaps=True, fenced=workers.fenced()))
    assert report.ok, report.summary()
    for lost in in_flight:
        rerun = scenario.starts(lost["job"])[-1]
        assert rerun["ppid"] == survivor.pid
        # Not before the queue's deadline for the killed worker's lease (a re-run right after
        # the kill would come within ~0.1 s of it).
        assert rerun["t"] >= max(killed_at, held_until.get(lost["job"], killed_at))
        record = queue.get(lost["job"])
        assert record is not None
        assert (record.state, record.attempts) == (JobState.COMPLETED, 2)


@pytest.mark.timeout(120)
def test_f2_a_killed_worker_spends_no_attempt_of_the_short_jobs_it_held_unstarted(
    tmp_path: Path, seed: int, redis_url: str, make_workers: MakeWorkers
) -> None:
    # Short jobs are claimed ahead (by default as many as the children finish in 20 ms, at
    # most 64: maybe none on a loaded machine, so here at least 8), their attempts counted
    # once their starts reach the queue: a SIGKILLed worker gives back the attempts of the
    # jobs it held unstarted, and of those its children had started since its last claim or
    # renew (running, or done with the completion not yet written: at most the children's and
    # a batch of completions). A job it reported started (or claimed for an idle child) keeps
    # its attempt, though the kill may have cut the child off before the handler began: at
    # most one such job per child.
    lease_s = 2
    queue, prefix = _queue(redis_url, "f2p")
    scenario = Scenario(tmp_path, seed, queue)
    jobs = [scenario.job("work", payload={"n": n, "seconds": 0.002}) for n in range(400)]
    scenario.produce(jobs)
    workers = make_workers(redis_url, prefix, lease_s)
    victim = workers.start("--prefetch", "8")
    wait_for(lambda: len(_started_under(scenario, victim.pid)) >= 40, 60, "40 jobs to start")

    victim.kill()
    victim.wait()
    held = leases_of_the_dead(redis_url, prefix, victim.pid)
    workers.start()
    wait_for(lambda: queue.stats("default").completed == len(jobs), 90, "every job to complete")
    codes = workers.stop_all()

    assert codes == [-9, 0], workers.log(1)
    ran = {start["job"] for start in _started_under(scenario, victim.pid)}
    print(f"the killed worker held {len(held.unstarted)} jobs unstarted, {len(held.counted)} not")
    assert held.unstarted - ran, "the victim held no job ahead when killed"
    assert len(held.unstarted & ran) <= 2 + BATCH_MAX
    assert len(held.counted - ran) <= 2
    report = scenario.check(Expectations(killed=(held,), fenced=workers.fenced()))
    assert report.ok, report.summary()


@pytest.mark.timeout(180)
def test_f15_a_poison_job_held_ahead_that_kills_its_worker_ends_dead_within_its_bound(
    tmp_path: Path, seed: int, redis_url: str, make_workers: MakeWorkers
) -> None:
    # Behind short jobs the poison is claimed ahead: the first worker it kills before the
    # start reached the queue gives its attempt back; from then on the pool reports its start
    # before running it, so it ends dead after at most max_attempts + 1 runs. Each worker the
    # poison kills is the only one running: the leases it held are read once it is dead and
    # before the next starts, so the check knows exactly which attempts their lapses keep (a
    # held job from its UNSTARTED_LAPSES_MAX-th unstarted lapse on spends its attempt at its
    # claim) and which they give back (jobs held ahead, run or not since the worker's last
    # write). A lease a dead worker took after the one the next worker reaped to run the poison
    # may still be there when that one dies too: a job held ahead, unstarted, whose lapse
    # explains nothing either way. The lease is 2 s: at 1 s, at load 25, the poison once died
    # after one run, an attempt spent without a run, as when a parent kept from the CPU for half
    # a second fences the job it claimed for its idle child before the child starts it.
    queue, prefix = _queue(redis_url, "f15h")
    scenario = Scenario(tmp_path, seed, queue)
    # The other jobs get attempts to spare: one that ran in a worker the poison killed, its
    # completion not yet written, spends an attempt each time (three kills could end it dead).
    before = [_short(scenario, n) for n in range(60)]
    poison = scenario.job("kill_parent", attempts=2)
    after = [_short(scenario, n) for n in range(60, 200)]
    scenario.produce([*before, poison, *after])
    workers = make_workers(redis_url, prefix, 2)
    live = [workers.start(concurrency=1)]
    killed: list[KilledWorker] = []

    def settled() -> bool:
        if live[0].poll() is not None and len(workers.started) < 10:
            killed.append(leases_of_the_dead(redis_url, prefix, live[0].pid))
            live[0] = workers.start(concurrency=1)  # a supervisor restarts dead workers
        record = queue.get(poison.id)
        done = queue.stats("default").completed == len(before) + len(after)
        return done and record is not None and record.state is JobState.DEAD

    try:
        wait_for(settled, 150, "the poison job to die and the others to complete")
    finally:
        workers.stop_all()
        unsettled = [queue.get(job_id) for job_id in scenario.ids]
        for record in unsettled:
            if record is not None and record.state is not JobState.COMPLETED:
                print(f"{record.job.id}: {record.state} attempts={record.attempts}")

    runs = len(scenario.starts(poison.id))
    print(f"the poison job ran {runs} times and killed {len(killed)} workers")
    report = scenario.check(
        Expectations(dead={poison.id: "lease lost"}, killed=tuple(killed), fenced=workers.fenced())
    )
    assert report.ok, report.summary()
    record = queue.get(poison.id)
    assert record is not None
    assert (record.attempts, record.reason) == (2, "lease lost")
    assert 2 <= runs <= 2 + 1
    assert len(killed) == runs


def _short(scenario: Scenario, n: int) -> Job:
    return scenario.job("work", attempts=10, payload={"n": n, "seconds": 0.002})


def _started_under(scenario: Scenario, parent: int) -> list[dict[str, Any]]:
    return [e for e in scenario.ledger.events() if e["ev"] == "start" and e["ppid"] == parent]


@pytest.mark.timeout(120)
def test_f15_a_poison_job_that_kills_its_worker_ends_dead_with_lease_lost(
    tmp_path: Path, seed: int, redis_url: str, make_workers: MakeWorkers
) -> None:
    queue, prefix = _queue(redis_url, "f15")
    scenario = Scenario(tmp_path, seed, queue)
    poison = scenario.job("kill_parent", attempts=2)
    others = [scenario.job("work", payload={"n": n, "seconds": 0.05}) for n in range(20)]
    scenario.produce([poison, *others])
    workers = make_workers(redis_url, prefix, 2)
    live = [workers.start(concurrency=1), workers.start(concurrency=1)]

    def settled() -> bool:
        for index, worker in enumerate(live):
            if worker.poll() is not None and len(workers.started) < 8:
                live[index] = workers.start(concurrency=1)  # a supervisor restarts dead workers
        record = queue.get(poison.id)
        done = queue.stats("default").completed == len(others)
        return done and record is not None and record.state is JobState.DEAD

    wait_for(settled, 90, "the poison job to die and the others to complete")
    workers.stop_all()

    fenced = workers.fenced()
    report = scenario.check(Expectations(dead={poison.id: "lease lost"}, fenced=fenced))
    assert report.ok, report.summary()
    record = queue.get(poison.id)
    assert record is not None
    assert (record.attempts, record.reason) == (2, "lease lost")
    spared = [job for job in others if job.id not in fenced]  # a loaded machine may fence some
    assert all(queue.get(job.id).attempts == 1 for job in spared)  # type: ignore[union-attr]


@pytest.mark.timeout(120)
def test_f3_children_of_a_stalled_worker_fence_themselves_before_their_leases_lapse(
    tmp_path: Path, seed: int, redis_url: str, make_workers: MakeWorkers
) -> None:
    lease_s = 2
    queue, prefix = _queue(redis_url, "f3")
    scenario = Scenario(tmp_path, seed, queue)
    jobs = [scenario.job("work", payload={"n": n, "seconds": 4.0}) for n in range(6)]
    scenario.produce(jobs)
    workers = make_workers(redis_url, prefix, lease_s)
    stalled, _ = workers.start(), workers.start()
    wait_for(
        lambda: len(_running_under(scenario, stalled.pid)) == 2, 60, "the worker to run 2 jobs"
    )

    in_flight = _running_under(scenario, stalled.pid)
    stalled.send_signal(signal.SIGSTOP)
    # How soon they go depends on the CPU a loaded machine gives them; whether it was soon
    # enough, before their jobs ran again elsewhere, is the ledger's to say (below).
    wait_for(lambda: not any(_alive(e["pid"]) for e in in_flight), 30, "self-fencing")
    stalled.send_signal(signal.SIGCONT)
    wait_for(lambda: queue.stats("default").completed == 6, 90, "every job to complete")
    codes = workers.stop_all()

    assert codes == [0, 0], workers.log(0)
    report = scenario.check(Expectations(check_overlaps=True, fenced=workers.fenced()))
    assert report.ok, report.summary()
    for lost in in_flight:
        ticks = [e["t"] for e in scenario.ledger.events() if e.get("pid") == lost["pid"]]
        assert max(ticks) < scenario.starts(lost["job"])[-1]["t"]  # dead before the re-run
        record = queue.get(lost["job"])
        assert record is not None
        assert (record.state, record.attempts) == (JobState.COMPLETED, 2)
