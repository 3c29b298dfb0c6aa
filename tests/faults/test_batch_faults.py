"""Batches and chains under real faults: `foundry work` processes whose children (or whole
workers) are SIGKILLed, and a Redis restart, with the ledger oracle.

Both run with the other slow fault tests (about 20 s each).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import attrs
import pytest
import redis

from foundry.domain import AfterFailure, Batch, Callback, Job, JobState, QueueUnavailable
from foundry.ports import BatchPort, QueuePort
from tests.faults.checker import Expectations
from tests.faults.harness import Rig, Worker
from tests.redis_server import RedisServer

#: A restart keeps Redis away longer than the client's own retries last, so workers see it.
DOWN_S = 3.0


def _dispatch(rig: Rig, port: BatchPort, items: list[Job | Batch], jobs: list[Job]) -> None:
    """Record every job as tried, send (re-sending while Redis is away), record as acked."""
    for job in jobs:
        rig.job_ids.append(job.id)
        rig.ledger.record("enqueue_try", job=job.id)
    give_up = time.monotonic() + 30
    while True:
        try:
            port.enqueue_batches(items)
            break
        except QueueUnavailable:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.05)
    for job in jobs:
        rig.ledger.record("enqueued", job=job.id)


def _ends(rig: Rig, job_id: str) -> int:
    return sum(e["ev"] == "end" and e["job"] == job_id for e in rig.ledger.events())


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(600)
def test_a_batch_of_1000_survives_20_killed_children_and_a_redis_restart(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="everysec")
    rig = make_rig(server.url)
    queue = rig.queue()
    assert isinstance(queue, BatchPort)
    workers = [rig.start_worker(lease_s=5), rig.start_worker(lease_s=5)]
    rig.wait_ready()
    members = [rig.job(ms=rig.rng.randrange(5, 15)) for _ in range(1000)]
    then, done = rig.job(), rig.job()
    batch = Batch(members, {Callback.THEN: then, Callback.FINALLY: done}, id="big-batch")

    _dispatch(rig, queue, [batch], [*members, then, done])
    kills = 0
    for at in range(40, 840, 40):
        rig.wait_until(f"{at} jobs to end", lambda at=at: rig.ended() >= at, 120)
        victim: Worker = workers[kills % 2]
        rig.wait_until("a child to kill", lambda v=victim: v.kill_child(rig.rng) is not None, 30)
        kills += 1
        rig.note(f"child SIGKILL #{kills}")
        if at == 480:
            server.stop()
            rig.note("Redis SHUTDOWN")
            time.sleep(DOWN_S)
            server.start()
            rig.note("Redis started again")
    rig.wait_until("the callbacks to run", lambda: _ends(rig, then.id) and _ends(rig, done.id), 180)
    rig.wait_drained(queue)
    record = queue.batch(batch.id, rig.queue_name)
    # Claims that may count an attempt without a start: a killed child may die holding a job
    # it was handed but had not started, and the restart may strand one claim of each
    # worker's two children.
    report = rig.finish(queue, Expectations(spare_attempts=kills + 2 * 2))

    assert kills == 20
    assert record is not None
    progress = record.progress
    assert (progress.completed + progress.failed, progress.pending) == (1000, 0)
    assert report.completed + report.dead == 1002
    fired = _fired_letters(rig, batch.id)
    assert fired == ("tf" if progress.failed == 0 else "ctf"), "each callback enqueued once"
    for callback in (then, done):
        assert queue.get(callback.id, rig.queue_name).state is JobState.COMPLETED  # type: ignore[union-attr]


def _fired_letters(rig: Rig, batch_id: str) -> str:
    """The raw record of the callbacks fired: one letter per firing (a second firing of one
    callback would show its letter twice)."""
    client = redis.Redis.from_url(rig.direct_url)
    raw = client.hget(f"{rig.prefix}:{{{rig.queue_name}}}:b:{batch_id}", "fd")
    return (raw or b"").decode()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(300)
def test_a_chain_of_50_steps_survives_three_killed_workers_each_step_once_in_order(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="everysec")
    rig = make_rig(server.url)
    queue = rig.queue()
    assert isinstance(queue, BatchPort)
    worker = rig.start_worker(lease_s=2)
    rig.wait_ready()
    steps = [rig.job(ms=rig.rng.randrange(20, 80))]
    for _ in range(49):
        after = (steps[-1].id,)
        job = rig.job(ms=rig.rng.randrange(20, 80))
        steps.append(attrs.evolve(job, after=after, after_failure=AfterFailure.CANCEL))

    _dispatch(rig, queue, list(steps), steps)
    for kill, at in enumerate((10, 25, 40), start=1):
        rig.wait_until(f"step {at} to start", lambda at=at: _started(rig, steps[at].id), 120)
        worker.process.kill()
        assert worker.stop() == -9
        rig.workers.remove(worker)
        rig.note(f"worker SIGKILL #{kill} while step {at} runs")
        worker = rig.start_worker(lease_s=2)
    rig.wait_until("the last step to complete", lambda: _completed(queue, rig, steps[-1]), 180)
    rig.wait_drained(queue)
    # A killed parent may have claimed a job it never handed to a child.
    report = rig.finish(queue, Expectations(spare_attempts=6))

    assert report.completed == 50
    assert queue.stats(rig.queue_name).completed == 50, "each step completed once"
    events = rig.ledger.events()
    for before, after in itertools.pairwise(steps):
        last_end = max(e["t"] for e in events if e["ev"] == "end" and e["job"] == before.id)
        first_start = min(e["t"] for e in events if e["ev"] == "start" and e["job"] == after.id)
        assert last_end <= first_start, f"step {after.id} started before {before.id} ended"


def _started(rig: Rig, job_id: str) -> bool:
    return any(e["ev"] == "start" and e["job"] == job_id for e in rig.ledger.events())


def _completed(queue: QueuePort, rig: Rig, job: Job) -> bool:
    try:
        record = queue.get(job.id, rig.queue_name)
    except QueueUnavailable:
        return False
    return record is not None and record.state is JobState.COMPLETED
