"""A Redis Cluster loses the master of a queue's slot to SIGKILL while two `foundry work`
processes drain the queue and the producer is still enqueueing; the cluster promotes the
master's replica and the workers carry on there. With REDIS_WAIT_REPLICAS=1 every write waited
for that replica, so the ledger oracle finds every acknowledged job completed, none lost (a job
claimed just before the kill may run again as the same attempt: claims wait for no replica).
The killed node comes back empty and the cluster makes it the new master's replica (the WAIT of
every completion needs one)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from redis.crc import key_slot

from foundry.application.pool.claims import PREFETCH_MAX
from tests.faults.checker import Expectations
from tests.faults.failover_check import ReplicationProbe, check_failover
from tests.faults.harness import Rig
from tests.redis_topologies import RedisClusterGroup

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 5000
CONCURRENCY = 2
LEASE_S = 5
QUEUE = "faults"


def test_workers_follow_the_promotion_of_a_killed_masters_replica_and_lose_nothing(
    make_rig: Callable[[str], Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "1")  # producer and workers
    group = RedisClusterGroup(replicas=1)
    try:
        rig = make_rig(group.url())
        slot = int(key_slot(QUEUE.encode()))
        queue = rig.queue()
        for _ in range(2):
            rig.start_worker(lease_s=LEASE_S, concurrency=CONCURRENCY)
        rig.wait_ready()
        probe = ReplicationProbe(rig.ledger, group.owner(slot), f"probe:{{{QUEUE}}}")
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS // 2)])
        rig.wait_until("a third to finish", lambda: rig.ended() >= JOBS // 3, 120)

        killer = threading.Thread(target=_fail_over, args=(rig, group, slot, probe))
        killer.start()  # mid-drain, while the rest is being enqueued
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS - JOBS // 2)])
        killer.join()
        rig.wait_drained(queue, timeout=180)
        # As in F10: a claim the dying master applied and replicated but never answered, and a
        # job held ahead whose lease lapsed during the outage, each leave an attempt with no run.
        # A job held ahead that started just before the kill, its start's report lost with the
        # master or never sent, runs again as the same attempt (check_failover's report_lag);
        # so does one whose lease its worker gave up before the start was reported (its log
        # says so: handed out just before the fence point, it ran, then was fenced).
        codes = rig.stop_workers()
        expect = Expectations(
            spare_attempts=2 * (2 * PREFETCH_MAX + CONCURRENCY), fenced=rig.fenced()
        )
        report = check_failover(rig, queue, expect, "a cluster failover", report_lag=LEASE_S / 3)
    finally:
        group.close()

    events = rig.ledger.events()
    promoted = next(event["t"] for event in events if event.get("promoted"))
    assert any(event["ev"] == "end" and event["t"] > promoted for event in events)
    # (Whether a worker logs an outage depends on the timing: its calls are sent again under
    # the cluster client's retry policy, which may outlast the promotion.)
    assert set(codes.values()) == {0}, codes
    assert report.acknowledged == JOBS  # the producer sends again until acknowledged
    assert report.completed == JOBS
    assert not report.lost


def _fail_over(rig: Rig, group: RedisClusterGroup, slot: int, probe: ReplicationProbe) -> None:
    master = group.owner(slot)
    probe.stop()
    group.kill(master)
    rig.note(f"master {master.port} of slot {slot} SIGKILL", kill=True)
    rig.wait_until("the replica to take the slot", lambda: group.owner(slot) is not master, 60)
    group.wait_until_ok()  # and every node alive agrees
    promoted = group.owner(slot)
    rig.note(f"replica {promoted.port} promoted", promoted=True)
    group.restart(master)  # back empty; the cluster makes it the new master's replica
    rig.note("old master restarted")
