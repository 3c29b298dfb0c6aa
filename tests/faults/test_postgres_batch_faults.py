"""A batch on a PostgreSQL queue under real faults: two ``foundry work`` processes drain its
members while their children are SIGKILLed, with the ledger oracle. Each callback is enqueued
exactly once (the batch row records every firing), every member's end is counted once.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from foundry.domain import Batch, Callback, Job, JobState
from foundry.ports import BatchPort
from tests.faults.checker import Expectations
from tests.faults.postgres_rig import MakePgRig, PostgresRig

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _ends(rig: PostgresRig, job_id: str) -> int:
    return sum(e["ev"] == "end" and e["job"] == job_id for e in rig.ledger.events())


def _fired(rig: PostgresRig, batch_id: str) -> list[str]:
    """Every firing the batch's row recorded, in order (a second firing of one callback would
    show it twice)."""
    query = sql.SQL("SELECT fired FROM {}.batches WHERE id = %s").format(sql.Identifier(rig.schema))
    with psycopg.connect(rig.direct_url, autocommit=True) as conn:
        row = conn.execute(query, [batch_id]).fetchone()
    assert row is not None
    return list(row[0])


@pytest.mark.timeout(300)
def test_pg5_a_batch_of_400_through_sigkilled_children_fires_each_callback_once(
    postgres_url: str, make_pg_rig: MakePgRig
) -> None:
    rig = make_pg_rig(postgres_url)
    queue = rig.queue()
    assert isinstance(queue, BatchPort)
    workers = [rig.start_worker(lease_s=3), rig.start_worker(lease_s=3)]
    rig.wait_ready()
    members = [rig.job(ms=rig.rng.randrange(5, 20)) for _ in range(400)]
    then, done = rig.job(), rig.job()
    batch = Batch(members, {Callback.THEN: then, Callback.FINALLY: done}, id="pg-batch")
    jobs: list[Job] = [*members, then, done]
    for job in jobs:
        rig.job_ids.append(job.id)
        rig.ledger.record("enqueue_try", job=job.id)
    queue.enqueue_batches([batch])
    for job in jobs:
        rig.ledger.record("enqueued", job=job.id)

    kills = 0
    for at in range(20, 320, 25):
        rig.wait_until(f"{at} jobs to end", lambda at=at: rig.ended() >= at, 120)
        victim = workers[kills % 2]
        rig.wait_until("a child to kill", lambda v=victim: v.kill_child(rig.rng) is not None, 30)
        kills += 1
        rig.note("SIGKILL a child", n=kills)
    rig.wait_until("the callbacks to run", lambda: _ends(rig, then.id) and _ends(rig, done.id), 120)
    rig.wait_drained(queue, timeout=120)
    record = queue.batch(batch.id, rig.queue_name)
    report = rig.finish(queue, Expectations(spare_attempts=kills))

    assert kills == 12
    assert record is not None
    progress = record.progress
    assert (progress.completed + progress.failed, progress.pending) == (400, 0)
    assert report.completed + report.dead == 402
    expected = ["then", "finally"] if progress.failed == 0 else ["catch", "finally"]
    assert _fired(rig, batch.id) == expected, "each callback enqueued once"
    for callback in (then, done):
        assert queue.get(callback.id, rig.queue_name).state is JobState.COMPLETED  # type: ignore[union-attr]
