"""F10: Sentinel fails over under real workers. The master is SIGKILLed while the producer is
still enqueueing and the workers are draining; the workers carry on against the promoted
replica. With REDIS_WAIT_REPLICAS=1 nothing acknowledged is lost; without it the loss is
bounded by the replication lag: a probe writes to the master and WAITs for the replica all
along, so the ledger knows the last moment the replica held every acknowledged write, and
only jobs acknowledged between then and the promotion may be gone. The test prints how many
were and how wide that window was (the ledger is the oracle)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from foundry.application.pool.claims import PREFETCH_MAX
from foundry.ports import QueuePort
from tests.faults.checker import Expectations, Report
from tests.faults.harness import Rig
from tests.faults.ledger import Ledger
from tests.redis_server import RedisServer
from tests.redis_topologies import SentinelGroup

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 5000
CONCURRENCY = 2
#: How often the probe checks that the replica holds the master's writes.
PROBE_EVERY_S = 0.05


class ReplicationProbe:
    """Until stopped: a write on the master, then ``WAIT 1``; each answered one is ledgered as
    ``replicated`` at the time its write was sent (the replica then held every write the
    master had applied before it)."""

    def __init__(self, ledger: Ledger, master: RedisServer) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ledger, master), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (before the master is killed: a restarted one is not the same)."""
        self._stop.set()
        self._thread.join()

    def _run(self, ledger: Ledger, master: RedisServer) -> None:
        with master.client() as client:
            while not self._stop.wait(PROBE_EVERY_S):
                sent = time.time()
                try:
                    client.set("f10:probe", sent)
                    if client.wait(1, 1000) >= 1:
                        ledger.record("replicated", t=sent)
                except redis.RedisError:
                    return


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
        probe = ReplicationProbe(rig.ledger, group.master)
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS // 2)])
        rig.wait_until("a third to finish", lambda: rig.ended() >= JOBS // 3, 120)

        killer = threading.Timer(0.2, _fail_over, (rig, group, probe))
        killer.start()  # mid-drain, while the rest is being enqueued
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS - JOBS // 2)])
        killer.join()
        rig.wait_drained(queue, timeout=180)
        outages = [worker.count("queue unavailable (") for worker in workers]
        print(f"  failovers the sentinels made: {group.switches()}")
        # A claim the dying master applied and replicated but never answered, and a job held
        # ahead whose lease lapsed while its worker could not renew it, each leave an attempt
        # with no run: at most what both workers held (short jobs: up to PREFETCH_MAX each)
        # and were asking for at that moment.
        expect = Expectations(spare_attempts=2 * (2 * PREFETCH_MAX + CONCURRENCY))
        report = rig.finish(queue, expect) if wait_replicas else _loss(rig, queue, expect, group)
    finally:
        group.close()

    assert report.acknowledged == JOBS  # the producer sends again until acknowledged
    assert any(outages), "the workers saw the master go"
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


def _loss(rig: Rig, queue: QueuePort, expect: Expectations, group: SentinelGroup) -> Report:
    """Without the WAIT: every problem is a lost job acknowledged after the probe last saw the
    replica hold everything and before the promotion; the count is printed, not hidden."""
    rig.stop_workers()
    report = rig.report(queue, expect)
    events = rig.ledger.events()
    held = [event["t"] for event in events if event["ev"] == "replicated"]
    assert held, "the probe never saw the replica hold the master's writes"
    killed = next(event["t"] for event in events if event.get("kill"))
    promoted = next(event["t"] for event in events if event.get("promoted"))
    acked = {event["job"]: event["t"] for event in events if event["ev"] == "enqueued"}
    outside = [job for job in report.lost if not max(held) <= acked[job] <= promoted]
    print(
        f"without REDIS_WAIT_REPLICAS: {len(report.lost)} acknowledged job(s) lost; the "
        f"replica last confirmed holding every write {killed - max(held):.3f} s before the kill"
    )
    assert not outside, (
        f"{len(outside)} lost job(s) acknowledged outside the replication lag window (the "
        f"sentinels failed over {group.switches()} time(s)); the first: {outside[:10]}"
    )
    assert len(report.problems) == len(report.lost), report.problems
    return report
