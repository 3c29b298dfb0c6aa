"""F10: Sentinel fails over under real workers. The master is SIGKILLed while the producer is
still enqueueing and the workers are draining; the workers carry on against the promoted
replica. With REDIS_WAIT_REPLICAS=1 nothing acknowledged is lost; without it the loss is
bounded by the replication lag: a probe writes to the master and WAITs for the replica all
along, so the ledger knows the last moment the replica held every acknowledged write, and
only jobs acknowledged between then and the promotion may be gone (and a job claimed then may
run again as the same attempt: its claim was lost too). The test prints how many were and how
wide that window was (the ledger is the oracle)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from foundry.application.pool.claims import PREFETCH_MAX
from foundry.application.pool.settle import CARRY_MAX_S
from tests.faults.checker import Expectations
from tests.faults.failover_check import ReplicationProbe, check_failover
from tests.faults.harness import Rig
from tests.redis_topologies import SentinelGroup

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 5000
CONCURRENCY = 2
LEASE_S = 5
MAX_JOB_S = 0.005  # the jobs run 1-4 ms
WRITE_S = 0.005  # a write's round trip, with room


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_f10_workers_follow_a_sentinel_failover_of_a_killed_master(
    make_rig: Callable[[str], Rig], monkeypatch: pytest.MonkeyPatch, wait_replicas: int
) -> None:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", str(wait_replicas))  # producer and workers
    group = SentinelGroup()
    try:
        rig = make_rig(group.url())
        queue = rig.queue()
        workers = [rig.start_worker(lease_s=LEASE_S, concurrency=CONCURRENCY) for _ in range(2)]
        rig.wait_ready()
        probe = ReplicationProbe(rig.ledger, group.master, "f10:probe")
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS // 2)])
        rig.wait_until("a third to finish", lambda: rig.ended() >= JOBS // 3, 120)

        killer = threading.Timer(0.2, _fail_over, (rig, group, probe))
        killer.start()  # mid-drain, while the rest is being enqueued
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS - JOBS // 2)])
        killer.join()
        rig.wait_drained(queue, timeout=180)
        outages = [worker.count("queue unavailable (") for worker in workers]
        events = rig.ledger.events()
        killed = next(event["t"] for event in events if event.get("kill"))
        after = sum(1 for event in events if event["ev"] == "start" and event["t"] > killed)
        print(f"  failovers the sentinels made: {group.switches()}")
        codes = rig.stop_workers()
        # A claim the dying master applied and replicated but never answered leaves an attempt
        # with no run: at most what both workers were asking for then (short jobs: up to
        # PREFETCH_MAX each; those held ahead come back unspent if their leases lapse). A start
        # with no attempt has a named cause: the worker gave the job's lease up (fenced through
        # the outage, or found lost by its first renew after it: its log says so), or the write
        # that told the queue of the start (a claim, a renew, the completion without the WAIT)
        # was lost with the master (check_failover's window: a start is reported before its
        # lease would be fenced, so within a lease).
        expect = Expectations(
            spare_attempts=2 * (2 * PREFETCH_MAX + CONCURRENCY), fenced=rig.fenced()
        )
        # With the WAIT, the completion's write makes the start's report durable; it leaves
        # at most CARRY_MAX_S after the job (under MAX_JOB_S here) ends, with its round trip.
        lag = CARRY_MAX_S + MAX_JOB_S + WRITE_S if wait_replicas else LEASE_S
        context = f"{group.switches()} failover(s)"
        report = check_failover(rig, queue, expect, context, report_lag=lag)
    finally:
        group.close()

    assert set(codes.values()) == {0}, codes
    assert report.acknowledged == JOBS  # the producer sends again until acknowledged
    # The workers lived through the failover: they saw the master go, or (holding jobs ahead,
    # they may have made no call that outlasted the client's retries) kept working after it.
    assert any(outages) or after >= JOBS // 4, (outages, after)
    if wait_replicas:
        assert report.completed == JOBS
        assert not report.lost


def _fail_over(rig: Rig, group: SentinelGroup, probe: ReplicationProbe) -> None:
    probe.stop()
    group.kill(group.master)
    rig.note("master SIGKILL", kill=True)
    group.wait_for_promotion()
    rig.note("replica promoted", promoted=True)
    group.restart(group.master)  # back empty; the sentinels make it the new master's replica
    rig.note("old master restarted")
