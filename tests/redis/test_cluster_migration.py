"""A queue's hash slot migrated between masters (``CLUSTER SETSLOT IMPORTING/MIGRATING``,
``MIGRATE``, ``SETSLOT NODE``, as ``redis-cli --cluster reshard`` does) while jobs are
enqueued, claimed and completed: calls answered ``TRYAGAIN``/``ASK`` mid-migration wait for it
to end, calls sent on a stale slot map (``MOVED``) follow the slot, those answered so in a
batch across queues are sent again alone, and no job is lost or run twice; a call on a slot
left migrating waits `MAX_REDIRECTS` times, then fails."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis.crc import key_slot

import foundry
from foundry import Job
from foundry.adapters.redis.cluster_runner import MAX_REDIRECTS
from foundry.domain import JobState, QueueUnavailable
from foundry.ports import ClaimRequest, Enqueued, Lease
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup

pytestmark = pytest.mark.redis

#: A lease long enough that none expires during the test (no job is claimed twice that way).
_LEASE = timedelta(minutes=5)


@pytest.fixture
def cluster() -> Iterator[RedisClusterGroup]:
    """A cluster of this test's own: its slots are moved, which the session's must not be."""
    group = RedisClusterGroup()
    try:
        yield group
    finally:
        group.close()


def _queue_on(cluster: RedisClusterGroup, master: RedisServer, taken: set[str]) -> str:
    """A queue name whose slot ``master`` serves (its keys share the ``{name}`` tag)."""
    for n in itertools.count():
        name = f"mig{n}"
        if name not in taken and cluster.owner(key_slot(name.encode())) is master:
            return name
    raise AssertionError("unreachable")


def _start_migrating(cluster: RedisClusterGroup, slot: int, target: RedisServer) -> RedisServer:
    """Mark ``slot`` importing on ``target`` and migrating on its master; that master."""
    source = cluster.owner(slot)
    with target.client() as importing, source.client() as migrating:
        importing.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", cluster.node_id(source))
        migrating.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", cluster.node_id(target))
    return source


def _move_keys(source: RedisServer, target: RedisServer, slot: int, most: int) -> int:
    """``MIGRATE`` up to ``most`` of ``slot``'s keys from ``source`` to ``target``; how many."""
    with source.client() as client:
        keys = client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, most)
        if keys:
            client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
    return len(keys)


def _finish(
    cluster: RedisClusterGroup, slot: int, source: RedisServer, target: RedisServer
) -> None:
    """Move the rest of ``slot``'s keys and give it to ``target`` on every master."""
    while _move_keys(source, target, slot, 100):
        pass
    owner = cluster.node_id(target)
    for node in (target, source, *(n for n in cluster.nodes if n not in (target, source))):
        with node.client() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner)
    cluster.wait_until_ok()


def _migrate(cluster: RedisClusterGroup, slot: int, target: RedisServer) -> None:
    _finish(cluster, slot, _start_migrating(cluster, slot, target), target)


def _redirections(node: RedisServer) -> int:
    """How many ``TRYAGAIN`` and ``ASK`` replies ``node`` has sent."""
    with node.client() as client:
        errors = client.info("errorstats")
    return sum(
        int(errors.get(f"errorstat_{kind}", {}).get("count", 0)) for kind in ("TRYAGAIN", "ASK")
    )


def test_jobs_survive_their_queues_slot_moving_between_masters(cluster: RedisClusterGroup) -> None:
    first, second, third = cluster.nodes
    moving = _queue_on(cluster, first, set())
    staying = _queue_on(cluster, second, {moving})
    slot = key_slot(moving.encode())
    fx = foundry.connect(cluster.url())
    queue = fx.queue
    jobs = {f"j{n}": (moving, staying)[n % 2] for n in range(60)}
    ids = iter(jobs)
    claimed: list[str] = []

    def enqueue(count: int) -> list[object]:
        batch = [Job("t", id=job_id, queue=jobs[job_id]) for job_id in itertools.islice(ids, count)]
        outcomes = queue.enqueue_many(batch)
        assert outcomes == [Enqueued(job.id) for job in batch]
        return outcomes

    def claim(limit: int) -> list[Lease]:
        leases = queue.claim(ClaimRequest((moving, staying), lease=_LEASE, limit=limit))
        claimed.extend(lease.job_id for lease in leases)
        return leases

    # Before: a batch over both queues, and leases held on each.
    enqueue(20)
    held = claim(12)  # the moving queue's 10, then 2 of the other (Q2: in order)
    assert {jobs[lease.job_id] for lease in held} == {moving, staying}

    # The slot moves with no call under way: the next batch over both queues meets MOVED
    # for the moving queue's calls, which are sent again alone, to the slot's new master.
    _migrate(cluster, slot, third)
    enqueue(20)

    # Again, to the first master, then the leases taken before are completed in one batch.
    _migrate(cluster, slot, first)
    assert queue.complete_many(held) == [True] * len(held)

    # Mid-migration: half the slot's keys moved, a worker claims and completes; its calls are
    # answered TRYAGAIN (or ASK) until the slot has moved, then MOVED: each goes through.
    enqueue(20)
    source = _start_migrating(cluster, slot, second)
    _move_keys(source, second, slot, 3)
    before = _redirections(source) + _redirections(second)
    done = threading.Event()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            while leases := claim(4):
                assert queue.complete_many(leases) == [True] * len(leases)
        except BaseException as error:  # checked by the test's thread
            failed.append(error)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while _redirections(source) + _redirections(second) == before and not done.is_set():
        done.wait(0.01)
    _finish(cluster, slot, source, second)
    worker.join(timeout=60)

    assert not failed, failed
    assert _redirections(source) + _redirections(second) > before  # it did wait mid-way
    assert sorted(claimed) == sorted(jobs)  # every job claimed, none twice
    for job_id, name in jobs.items():
        record = queue.get(job_id, name)
        assert record is not None, job_id
        assert (record.state, record.attempts) == (JobState.COMPLETED, 1), record
    for name in (moving, staying):
        stats = queue.stats(name)
        assert (stats.ready, stats.active, stats.completed) == (0, 0, 30)
    fx.close()


def test_asyncio_enqueues_survive_their_queues_slot_moving(cluster: RedisClusterGroup) -> None:
    first, second, third = cluster.nodes
    moving = _queue_on(cluster, first, set())
    slot = key_slot(moving.encode())
    fx = foundry.connect(cluster.url())
    jobs = [Job("t", id=f"a{n}", queue=moving) for n in range(30)]

    async def main() -> list[object]:
        aqueue = fx.async_queue
        outcomes = [await aqueue.enqueue(job) for job in jobs[:10]]  # before
        _migrate(cluster, slot, third)  # no call under way: the next ones meet MOVED
        outcomes += await asyncio.gather(*(aqueue.enqueue(job) for job in jobs[10:20]))
        source = _start_migrating(cluster, slot, second)
        _move_keys(source, second, slot, 3)
        before = _redirections(source) + _redirections(second)
        sent = asyncio.gather(*(aqueue.enqueue(job) for job in jobs[20:]))
        while _redirections(source) + _redirections(second) == before and not sent.done():
            await asyncio.sleep(0.01)
        _finish(cluster, slot, source, second)
        outcomes += await sent
        await fx.aclose()
        return outcomes

    outcomes = asyncio.run(main())

    assert outcomes == [Enqueued(job.id) for job in jobs]
    queue = foundry.connect(cluster.url()).queue
    assert queue.stats(moving).ready == len(jobs)
    leases = queue.claim(ClaimRequest((moving,), lease=_LEASE, limit=100))
    assert sorted(lease.job_id for lease in leases) == sorted(job.id for job in jobs)


def test_asyncio_calls_wait_out_a_migration_longer_than_redis_py_waits(
    cluster: RedisClusterGroup,
) -> None:
    # redis-py's asyncio cluster client sends a command answered TRYAGAIN at most 16 times,
    # about 0.4 s: a slot whose keys take longer to migrate must not fail the calls on it.
    first, second, _ = cluster.nodes
    moving = _queue_on(cluster, first, set())
    slot = key_slot(moving.encode())
    fx = foundry.connect(cluster.url())
    jobs = [Job("t", id=f"w{n}", queue=moving) for n in range(2)]

    async def main() -> list[object]:
        aqueue = fx.async_queue
        outcomes: list[object] = [await aqueue.enqueue(jobs[0])]
        source = _start_migrating(cluster, slot, second)
        _move_keys(source, second, slot, 100)
        before = _redirections(source) + _redirections(second)
        gave_up = threading.Event()

        def finish_once_refused_often() -> None:
            # Each wait of the one call is an ASK from the source, then a TRYAGAIN from the
            # importing master: 24 replies are past redis-py's own 16 tries, and within the
            # runner's 16 waits.
            while _redirections(source) + _redirections(second) < before + 24:
                if gave_up.wait(0.01):
                    break
            _finish(cluster, slot, source, second)

        finisher = threading.Thread(target=finish_once_refused_often)
        finisher.start()
        try:
            outcomes.append(await aqueue.enqueue(jobs[1]))
        finally:
            gave_up.set()
            finisher.join(timeout=60)
            await fx.aclose()
        return outcomes

    outcomes = asyncio.run(main())

    assert outcomes == [Enqueued(job.id) for job in jobs]
    assert foundry.connect(cluster.url()).queue.stats(moving).ready == len(jobs)


def _tryagain(node: RedisServer) -> int:
    """How many ``TRYAGAIN`` replies ``node`` has sent (each one a pause of the call)."""
    with node.client() as client:
        errors = client.info("errorstats")
    return int(errors.get("errorstat_TRYAGAIN", {}).get("count", 0))


@pytest.mark.parametrize("producer", ["sync", "asyncio"])
@pytest.mark.parametrize("moved", [0, 100], ids=["its keys not moved", "its keys moved"])
def test_a_call_on_a_slot_left_migrating_waits_16_times_then_fails(
    cluster: RedisClusterGroup, moved: int, producer: str
) -> None:
    # Keys not moved: the source answers TRYAGAIN. Moved: it answers ASK, and the importing
    # master TRYAGAIN (a queue function's key that never exists is missing there).
    first, second, _ = cluster.nodes
    stuck = _queue_on(cluster, first, set())
    slot = key_slot(stuck.encode())
    fx = foundry.connect(cluster.url())
    fx.queue.enqueue(Job("t", queue=stuck))
    source = _start_migrating(cluster, slot, second)
    _move_keys(source, second, slot, moved)
    before = _tryagain(source) + _tryagain(second)

    async def enqueue_from_asyncio() -> None:
        try:
            await fx.async_queue.enqueue(Job("t", queue=stuck))
        finally:
            await fx.aclose()

    def enqueue() -> None:
        if producer == "sync":
            fx.queue.enqueue(Job("t", queue=stuck))
        else:
            asyncio.run(enqueue_from_asyncio())

    with pytest.raises(QueueUnavailable) as unavailable:
        enqueue()

    assert _tryagain(source) + _tryagain(second) - before == MAX_REDIRECTS
    assert f"slot {slot} kept moving" in str(unavailable.value)
    assert "redis-cli --cluster fix" in str(unavailable.value)
