"""A Redis Cluster reshards the slot of a queue while two `foundry work` processes drain it
and the producer is still enqueueing (``redis-cli --cluster reshard``, keys moved with
MIGRATE). The ledger is the oracle: every acknowledged job completes, none is lost, and no job
runs more often than its claims (at-least-once re-runs of interrupted jobs only)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from redis.crc import key_slot

from tests.faults.checker import Expectations
from tests.faults.harness import Rig
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 1500
CONCURRENCY = 2


def test_a_queue_slot_resharded_during_a_drain_loses_nothing_and_runs_nothing_twice(
    make_rig: Callable[[str], Rig],
) -> None:
    group = RedisClusterGroup()
    try:
        rig = make_rig(group.url())
        rig.queue_name, slot = _queue_on_a_first_slot(group)
        source = group.owner(slot)
        target = next(node for node in group.nodes if node is not source)
        queue = rig.queue()
        for _ in range(2):
            rig.start_worker(lease_s=5, concurrency=CONCURRENCY)
        rig.wait_ready()
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS // 2)])
        rig.wait_until("a third to finish", lambda: rig.ended() >= JOBS // 3, 60)

        mover = threading.Thread(target=_reshard, args=(rig, group, slot, source, target))
        mover.start()  # mid-drain, while the rest is being enqueued
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 5)) for _ in range(JOBS - JOBS // 2)])
        mover.join()
        moved_to = group.owner(slot)
        rig.wait_drained(queue)
        report = rig.finish(queue, Expectations())
        redirected = _redirections(group)
    finally:
        group.close()

    events = rig.ledger.events()
    moved = next(event["t"] for event in events if event.get("text") == "resharded")
    print(f"redirections answered: {redirected}; re-runs: {report.reruns}")
    assert moved_to is target
    assert any(event["ev"] == "end" and event["t"] > moved for event in events)
    assert redirected.get("MOVED", 0) > 0  # the workers and the producer followed the slot
    assert report.acknowledged == JOBS
    assert report.completed == JOBS
    assert not report.lost
    assert report.duplicated == 0


def _queue_on_a_first_slot(group: RedisClusterGroup) -> tuple[str, int]:
    """A queue name whose slot is the first of its master's (redis-cli moves a master's
    lowest slots first, so moving one slot moves this queue), and that slot."""
    firsts = {first for node in group.nodes for first, _ in group.ranges(node)}
    for i in range(1_000_000):
        name = f"faults-{i}"
        slot = int(key_slot(name.encode()))
        if slot in firsts:
            return name, slot
    raise AssertionError("no queue name found on a first slot")


def _reshard(
    rig: Rig, group: RedisClusterGroup, slot: int, source: RedisServer, target: RedisServer
) -> None:
    """Move ``slot``, the source's first, to ``target`` (the keys of the queue with it)."""
    rig.note(f"resharding slot {slot} from {source.port} to {target.port}")
    group.cli(
        "--cluster", "reshard", f"127.0.0.1:{source.port}",
        "--cluster-from", group.node_id(source), "--cluster-to", group.node_id(target),
        "--cluster-slots", "1", "--cluster-yes", "--cluster-replace",
    )  # fmt: skip
    group.wait_until_ok()
    rig.note("resharded")


def _redirections(group: RedisClusterGroup) -> dict[str, int]:
    """How many MOVED, ASK and TRYAGAIN replies the nodes sent (INFO errorstats)."""
    counts: dict[str, int] = {}
    for node in group.nodes:
        with node.client() as probe:
            for name, value in probe.info("errorstats").items():
                kind = name.removeprefix("errorstat_")
                counts[kind] = counts.get(kind, 0) + int(value["count"])
    return counts
