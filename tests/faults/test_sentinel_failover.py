"""F10: Sentinel fails over under real workers. The master is SIGKILLed while the producer is
still enqueueing and the workers are draining; the workers carry on against the promoted
replica. With REDIS_WAIT_REPLICAS=1 nothing acknowledged is lost; without it the loss is
bounded by the replication lag: only jobs acknowledged just before the kill may be gone, and
the test prints how many were (the ledger is the oracle)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from foundry.application.pool.claims import PREFETCH_MAX
from foundry.ports import QueuePort
from tests.faults.checker import Expectations, Report
from tests.faults.harness import Rig
from tests.redis_topologies import SentinelGroup

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 1500
CONCURRENCY = 2
#: How long before the kill an acknowledged enqueue may still be missing from the replica
#: (loopback replication lags by well under this).
LAG_WINDOW_S = 1.0


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_f10_workers_follow_a_sentinel_failover_of_a_killed_master(
    make_rig: Callable[[str], Rig], monkeypatch: pytest.MonkeyPatch, wait_replicas: int
) -> None:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", str(wait_replicas))  # producer and workers
    group = SentinelGroup()
    try:
        rig = make_rig(group.url())
        queue = rig.queue()
        workers = [rig.start_worker(lease_s=5, concurrency=CONCURRENCY) for _ in range(2)]
        rig.wait_ready()
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS // 2)])
        rig.wait_until("a third to finish", lambda: rig.ended() >= JOBS // 3, 60)

        killer = threading.Timer(0.2, _fail_over, (rig, group))
        killer.start()  # mid-drain, while the rest is being enqueued
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS - JOBS // 2)])
        killer.join()
        rig.wait_drained(queue)
        outages = [worker.count("queue unavailable (") for worker in workers]
        # A claim the dying master applied and replicated but never answered, and a job held
        # ahead whose lease lapsed while its worker could not renew it, each leave an attempt
        # with no run: at most what both workers held (short jobs: up to PREFETCH_MAX each)
        # and were asking for at that moment.
        expect = Expectations(spare_attempts=2 * (2 * PREFETCH_MAX + CONCURRENCY))
        report = rig.finish(queue, expect) if wait_replicas else _loss(rig, queue, expect)
    finally:
        group.close()

    assert report.acknowledged == JOBS  # the producer sends again until acknowledged
    assert any(outages), "the workers saw the master go"
    if wait_replicas:
        assert report.completed == JOBS
        assert not report.lost


def _fail_over(rig: Rig, group: SentinelGroup) -> None:
    group.kill(group.master)
    rig.note("master SIGKILL", kill=True)
    group.wait_for_promotion()
    rig.note("replica promoted")
    group.restart(group.master)  # back empty; the sentinels make it the new master's replica
    rig.note("old master restarted")


def _loss(rig: Rig, queue: QueuePort, expect: Expectations) -> Report:
    """Without the WAIT: every problem is a lost job acknowledged within ``LAG_WINDOW_S``
    before the kill; the count is printed, not hidden."""
    rig.stop_workers()
    report = rig.report(queue, expect)
    events = rig.ledger.events()
    killed = next(event["t"] for event in events if event.get("kill"))
    acked = {event["job"]: event["t"] for event in events if event["ev"] == "enqueued"}
    late = [job for job in report.lost if acked.get(job, 0) < killed - LAG_WINDOW_S]
    print(f"without REDIS_WAIT_REPLICAS: {len(report.lost)} acknowledged job(s) lost")
    assert not late, f"lost jobs acknowledged long before the kill: {late}"
    assert len(report.problems) == len(report.lost), report.problems
    return report
