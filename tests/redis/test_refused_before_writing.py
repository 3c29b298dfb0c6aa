"""A queue function that meets a key of the wrong type refuses before its first write.

Redis keeps what a function wrote before one of its commands failed, so a key damaged halfway
through would leave a job half written: stored but in no set (never claimed), popped but not
leased. Each case damages one key a function writes, calls the function through the public
API, and checks that it is refused as the queue's ``QueueBroken`` naming the key with nothing
written; then, the key put back, the same call succeeds and every pending job is claimed
exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import (
    Batch,
    Callback,
    Dead,
    ErrorInfo,
    Job,
    JobState,
    Limit,
    QueueBroken,
    Rate,
    Retry,
    RunAfter,
    UniqueSpec,
    UniqueUntil,
)
from foundry.ports import ClaimRequest
from foundry.ports.queue_types import Lease
from foundry.ports.schedule_types import Fired, Firing, ScheduleEntry
from tests.backends import LEASE, unique_prefix

pytestmark = pytest.mark.redis

#: A case's setup step: given the queue and the clock, it answers what ``act`` is given.
Step = Callable[[RedisQueue, ManualClock], Any]

#: Two jobs already pending in queue ``b``: one in the ready set, one in the fifo.
PENDING = ("j0", "j00")


@attrs.frozen
class Case:
    """``act`` (given what ``setup`` returned) refused while ``key`` is a string (a hash where
    a string belongs)."""

    key: str
    act: Callable[[RedisQueue, Any], object]
    setup: Callable[[RedisQueue, ManualClock], Any] = lambda queue, clock: None
    #: The jobs claimable once the call went through.
    claimable: tuple[str, ...] = PENDING
    #: Raised (``QueueBroken``); else the call answers ``refused_reply``.
    raises: bool = True
    refused_reply: object = None


def _claimed_first(queue: RedisQueue, clock: ManualClock) -> Lease:
    [lease] = queue.claim(ClaimRequest(["b"], lease=LEASE))
    return lease


def _lapsed(queue: RedisQueue, clock: ManualClock) -> Lease:
    lease = _claimed_first(queue, clock)
    clock.advance(LEASE * 2)
    return lease


def _due(queue: RedisQueue, clock: ManualClock) -> None:
    queue.enqueue(Job("t", id="j1", queue="b", schedule=RunAfter(timedelta(minutes=5))))
    clock.advance(timedelta(minutes=10))


def _buried(queue: RedisQueue, clock: ManualClock) -> None:
    queue.fail(_claimed_first(queue, clock), ErrorInfo("Boom", "no"), Dead("gave up"))


def _waited(*job_ids: str) -> Callable[[RedisQueue, ManualClock], None]:
    """Someone waits for each of ``job_ids`` to end (the mark ``watch`` leaves)."""

    def mark(queue: RedisQueue, _: ManualClock) -> None:
        for job_id in job_ids:
            queue._runner.client.hset(f"{queue._keys.prefix}:{{b}}:waiters", job_id, "1")

    return mark


def _then(
    *steps: Callable[[RedisQueue, ManualClock], Any],
) -> Callable[[RedisQueue, ManualClock], Any]:
    """Each step in turn; the last one's answer."""

    def run(queue: RedisQueue, clock: ManualClock) -> Any:
        answer = None
        for step in steps:
            answer = step(queue, clock)
        return answer

    return run


def _member_claimed(queue: RedisQueue, clock: ManualClock) -> Lease:
    """Batch ``bt``'s one member, ahead of the pending jobs, claimed."""
    queue.enqueue_batches([Batch([Job("t", id="m1", queue="b", priority=2)], id="bt")])
    return _claimed_first(queue, clock)


def _stop_asked(queue: RedisQueue, clock: ManualClock) -> Lease:
    """``j0`` claimed, then asked to stop by a cancel."""
    lease = _claimed_first(queue, clock)
    queue.cancel("j0", "b")
    return lease


def _firing(queue: RedisQueue, clock: ManualClock) -> Firing:
    """Schedule ``s`` of queue ``b``, due now, and its firing of job ``s1`` (priority 1)."""
    now = clock.now()
    queue.sync_schedules([ScheduleEntry("s", "b", "every minute", now)], redefine=False)
    tick = (now, Job("t", id="s1", queue="b", priority=1))
    return Firing("s", "b", "every minute", now, now + timedelta(minutes=1), (tick,))


def _fire(queue: RedisQueue, firing: Firing) -> list[Fired]:
    [fired] = queue.fire([firing])
    if fired.refused is not None:
        raise fired.refused
    return [fired]


def _expired(queue: RedisQueue, clock: ManualClock) -> None:
    """``j1`` completed, its record kept past its time (the next enqueue of ``j1`` forgets
    it and stores a new job)."""
    queue.enqueue(Job("t", id="j1", queue="b", priority=2))
    queue.complete(_claimed_first(queue, clock), 1)
    clock.advance(timedelta(days=2))


def _batch_expired(queue: RedisQueue, clock: ManualClock) -> None:
    """Batch ``bt`` ended, its record kept past its time (a call that takes its id forgets
    it)."""
    queue.complete(_member_claimed(queue, clock), 1)
    clock.advance(timedelta(days=2))


def _claim_all(queue: RedisQueue, _: object) -> list[str]:
    return [lease.job_id for lease in queue.claim(ClaimRequest(["b"], lease=LEASE, limit=10))]


def _enqueue(**options: Any) -> Callable[[RedisQueue, object], object]:
    return lambda queue, _: queue.enqueue(Job("t", id="j1", queue="b", **options))


def _enqueue_id(job_id: str) -> Callable[[RedisQueue, object], object]:
    return lambda queue, _: queue.enqueue(Job("t", id=job_id, queue="b"))


def _fail(decision: Retry | Dead) -> Callable[[RedisQueue, Lease], object]:
    return lambda queue, lease: queue.fail(lease, ErrorInfo("Boom", "no"), decision)


#: Limits of key ``k``: a slot (of two, or one), a start a minute (or an hour).
_SLOTS, _ONE_SLOT = Limit("k", concurrency=2), Limit("k", concurrency=1)
_MINUTELY = Limit("k", rate=Rate(1, timedelta(minutes=1)))
_HOURLY = Limit("k", rate=Rate(1, timedelta(hours=1)))


def _limited(*ids: str, limit: Limit, priority: int = 2, **options: Any) -> list[Job]:
    """Jobs of limit ``limit``, claimed before the pending ones (at a higher priority)."""
    return [Job("t", id=id, queue="b", limit=limit, priority=priority, **options) for id in ids]


def _enqueued(*jobs: Job) -> Callable[[RedisQueue, ManualClock], None]:
    return lambda queue, clock: queue.enqueue_many(list(jobs))


def _due_limited(queue: RedisQueue, clock: ManualClock) -> None:
    queue.enqueue_many(_limited("j1", limit=_SLOTS, priority=0, schedule=_LATER))
    clock.advance(timedelta(minutes=10))


def _claimed_limited(queue: RedisQueue, clock: ManualClock) -> Lease:
    """``j1`` of a concurrency limit, claimed (it holds a slot)."""
    queue.enqueue_many(_limited("j1", limit=_SLOTS))
    return _claimed_first(queue, clock)


def _claimed_and_parked(queue: RedisQueue, clock: ManualClock) -> Lease:
    """``j1`` claimed, holding key ``k``'s one slot; ``j2`` parked for it (and ``j0`` claimed
    by the claim that parked it)."""
    queue.enqueue_many(_limited("j1", "j2", limit=_ONE_SLOT))
    lease = _claimed_first(queue, clock)
    queue.claim(ClaimRequest(["b"], lease=LEASE))
    return lease


def _slot_taken(queue: RedisQueue, clock: ManualClock) -> None:
    """``j1`` claimed, holding key ``k``'s one slot; ``j2`` of the same key ready."""
    queue.enqueue_many(_limited("j1", limit=_ONE_SLOT))
    _claimed_first(queue, clock)
    queue.enqueue_many(_limited("j2", limit=_ONE_SLOT))


def _turn_held(queue: RedisQueue, clock: ManualClock) -> None:
    """``j1`` started, taking key ``k``'s start this hour; ``j2`` and ``j3`` wait."""
    queue.enqueue_many(_limited("j1", "j2", "j3", limit=_HOURLY))
    _claimed_first(queue, clock)


def _in_line(queue: RedisQueue, clock: ManualClock) -> None:
    """``j1`` started, taking key ``k``'s start this hour; ``j2`` holds its next turn (delayed
    to it) and ``j3`` waits in line, both pending (and ``j0`` claimed beside them)."""
    _turn_held(queue, clock)
    _claimed_first(queue, clock)


def _lapsed_limited(queue: RedisQueue, clock: ManualClock) -> Lease:
    lease = _claimed_limited(queue, clock)
    clock.advance(LEASE * 2)
    return lease


_TWO_UNIQUE = [
    Job("t", id="j1", queue="b", unique=UniqueSpec("k1")),
    Job("t", id="j2", queue="b", unique=UniqueSpec("k2")),
]
_LATER = RunAfter(timedelta(minutes=5))

CASES = {
    **{
        f"enqueue-{key}": Case(key, _enqueue(), claimable=(*PENDING, "j1"))
        for key in ("meta", "fifo", "wake")
    },
    **{
        f"enqueue-priority-{key}": Case(key, _enqueue(priority=1), claimable=(*PENDING, "j1"))
        for key in ("ready", "wake")
    },
    **{
        f"enqueue-delayed-{key}": Case(key, _enqueue(schedule=_LATER), claimable=(*PENDING, "j1"))
        for key in ("delayed", "state")
    },
    "enqueue-unique-u:k2": Case(
        "u:k2", lambda queue, _: queue.enqueue_many(_TWO_UNIQUE), claimable=(*PENDING, "j1", "j2")
    ),
    "enqueue-after-deps": Case("deps", _enqueue(after=("j0",))),
    "batch-batchof": Case(
        "batchof",
        lambda queue, _: queue.enqueue_batches([Batch([Job("t", id="m1", queue="b")], id="bt")]),
        claimable=(*PENDING, "m1"),
    ),
    **{f"claim-{key}": Case(key, _claim_all) for key in ("state", "leases", "jobs")},
    "claim-due-ready": Case("ready", _claim_all, _due, (*PENDING, "j1")),
    **{
        f"complete-{key}": Case(
            key, lambda queue, lease: queue.complete(lease, 1), _claimed_first, ("j00",)
        )
        for key in ("leases", "done", "meta", "results", "ahead")
    },
    **{
        f"fail-retry-{key}": Case(key, _fail(Retry(timedelta(0))), _claimed_first)
        for key in ("leases", "meta", "ready", "wake")
    },
    **{
        f"fail-dead-{key}": Case(key, _fail(Dead("gave up")), _claimed_first, ("j00",))
        for key in ("leases", "dead")
    },
    **{
        f"release-{key}": Case(key, lambda queue, lease: queue.release(lease), _claimed_first)
        for key in ("meta", "ready", "wake")
    },
    "renew-leases": Case(
        "leases",
        lambda queue, lease: queue.renew([lease], LEASE * 2),
        _claimed_first,
        ("j00",),
        raises=False,
        refused_reply=[None],
    ),
    **{f"reap-{key}": Case(key, lambda queue, _: queue.reap(), _lapsed) for key in ("state",)},
    **{
        f"cancel-{key}": Case(key, lambda queue, _: queue.cancel("j0", "b"), claimable=("j00",))
        for key in ("ready", "done")
    },
    **{
        f"requeue-dead-{key}": Case(key, lambda queue, _: queue.requeue_dead("b"), _buried)
        for key in ("state", "ready", "meta")
    },
    **{
        f"delete-{key}": Case(key, lambda queue, _: queue.delete("b", "j0"), claimable=("j00",))
        for key in ("errors", "done")
    },
    "purge-errors": Case("errors", lambda queue, _: queue.purge("b"), claimable=()),
    # Forgetting a pending job that holds its key's turn passes the turn on.
    **{
        f"purge-{key}": Case(key, lambda queue, _: queue.purge("b"), _in_line, claimable=())
        for key in ("lim:rate:k", "lim:line:k")
    },
    "claim-lim:run": Case(
        "lim:run:k", _claim_all, _enqueued(*_limited("j1", limit=_SLOTS)), (*PENDING, "j1")
    ),
    "claim-due-lim:run": Case("lim:run:k", _claim_all, _due_limited, (*PENDING, "j1")),
    "claim-lim:park": Case("lim:park:k", _claim_all, _slot_taken),
    "claim-lim:rate": Case(
        "lim:rate:k", _claim_all, _enqueued(*_limited("j1", limit=_MINUTELY)), (*PENDING, "j1")
    ),
    "claim-lim:line": Case("lim:line:k", _claim_all, _turn_held),
    **{
        f"complete-{key}": Case(
            key, lambda queue, lease: queue.complete(lease, 1), setup, claimable
        )
        for key, setup, claimable in [
            ("lim:run:k", _claimed_limited, PENDING),
            ("lim:park:k", _claimed_and_parked, ("j00", "j2")),
        ]
    },
    "fail-retry-lim:run": Case(
        "lim:run:k", _fail(Retry(timedelta(0))), _claimed_limited, (*PENDING, "j1")
    ),
    "fail-dead-lim:run": Case("lim:run:k", _fail(Dead("gave up")), _claimed_limited),
    "release-lim:run": Case(
        "lim:run:k", lambda queue, lease: queue.release(lease), _claimed_limited, (*PENDING, "j1")
    ),
    "reap-lim:run": Case(
        "lim:run:k", lambda queue, _: queue.reap(), _lapsed_limited, (*PENDING, "j1")
    ),
    **{
        f"{name}-lim:rate": Case("lim:rate:k", act, _enqueued(*_limited("j1", limit=_MINUTELY)))
        for name, act in [
            ("cancel", lambda queue, _: queue.cancel("j1", "b")),
            ("delete", lambda queue, _: queue.delete("b", "j1")),
        ]
    },
    "batch-cancel-lim:rate": Case(
        "lim:rate:k",
        lambda queue, _: queue.cancel_batch("bt", "b"),
        lambda queue, _: queue.enqueue_batches([Batch(_limited("m1", limit=_MINUTELY), id="bt")]),
    ),
    # What forgetting an expired record writes, when an enqueue re-uses its id.
    **{
        f"enqueue-expired-{key}": Case(key, _enqueue(), _expired, (*PENDING, "j1"))
        for key in ("errors", "dead")
    },
    # What forgetting an expired batch's record writes, when a call re-uses its id.
    "enqueue-batch-expired-state": Case(
        "state", _enqueue_id("bt"), _batch_expired, (*PENDING, "bt")
    ),
    **{
        f"batch-expired-{key}": Case(
            key,
            lambda queue, _: queue.enqueue_batches(
                [Batch([Job("t", id="m2", queue="b")], id="bt")]
            ),
            _batch_expired,
            (*PENDING, "m2"),
        )
        for key in ("state", "batches", "batches:end")
    },
    # A waiter's notification list, written when the job it waits for ends.
    "complete-n:j0": Case(
        "n:j0",
        lambda queue, lease: queue.complete(lease, 1),
        _then(_waited("j0"), _claimed_first),
        ("j00",),
    ),
    "fail-dead-n:j0": Case(
        "n:j0", _fail(Dead("gave up")), _then(_waited("j0"), _claimed_first), ("j00",)
    ),
    "fail-dead-n:j1": Case(
        "n:j1",
        _fail(Dead("gave up")),
        _then(_enqueue(after=("j0",)), _waited("j1"), _claimed_first),
        ("j00",),
    ),
    "release-stopped-n:j0": Case(
        "n:j0",
        lambda queue, lease: queue.release(lease),
        _then(_waited("j0"), _stop_asked),
        ("j00",),
    ),
    "reap-stopped-n:j0": Case(
        "n:j0",
        lambda queue, _: queue.reap(),
        _then(_waited("j0"), _stop_asked, lambda queue, clock: clock.advance(LEASE * 2)),
        ("j00",),
    ),
    "cancel-n:j0": Case("n:j0", lambda queue, _: queue.cancel("j0", "b"), _waited("j0"), ("j00",)),
    "delete-n:j0": Case("n:j0", lambda queue, _: queue.delete("b", "j0"), _waited("j0"), ("j00",)),
    "purge-n:j00": Case("n:j00", lambda queue, _: queue.purge("b"), _waited("j00"), claimable=()),
    "batch-cancel-n:m1": Case(
        "n:m1",
        lambda queue, _: queue.cancel_batch("bt", "b", "enough"),
        _then(
            lambda queue, _: queue.enqueue_batches(
                [Batch([Job("t", id="m1", queue="b")], id="bt")]
            ),
            _waited("m1"),
        ),
    ),
    # A batch's record, written when a member ends.
    **{
        f"{name}-b:bt": Case("b:bt", act, _member_claimed)
        for name, act in {
            "complete": lambda queue, lease: queue.complete(lease, 1),
            "fail-dead": _fail(Dead("gave up")),
        }.items()
    },
    # A schedule's firing enqueues its job as enqueue does.
    **{
        f"schedule-fire-{key}": Case(key, _fire, _firing, (*PENDING, "s1"))
        for key in ("ready", "wake")
    },
}


def _snapshot(client: redis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key of the test's prefix, by its type and content (a hash's serialised form
    follows its table's layout, which a read may move along while it grows)."""
    read = {
        b"hash": client.hgetall,
        b"string": client.get,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        b"set": client.smembers,
    }
    snapshot = {}
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        kind = client.type(key)
        snapshot[key] = (kind, read[kind](key), client.pttl(key) > 0)
    return snapshot


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_key_of_the_wrong_type_refuses_the_call_before_anything_is_written(
    redis_url: str, clock: ManualClock, case: Case
) -> None:
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", id="j0", queue="b", priority=1), Job("t", id="j00", queue="b")])
    context = case.setup(queue, clock)
    client = redis.Redis.from_url(redis_url)
    key = f"{prefix}:{{b}}:{case.key}"
    kept = client.dump(key)
    client.delete(key)
    damage = "hash" if case.key.startswith(("u:", "lim:run:")) else "string"
    if damage == "hash":
        client.hset(key, "x", "y")
    else:
        client.set(key, "x")
    before = _snapshot(client, prefix)

    if case.raises:
        with pytest.raises(QueueBroken) as raised:
            case.act(queue, context)
        assert raised.value.queue == "b"
        assert f"{key} is a {damage}" in str(raised.value)
    else:
        assert case.act(queue, context) == case.refused_reply
    written = _snapshot(client, prefix)
    client.delete(key)
    if kept is not None:
        client.restore(key, 0, kept)
    again = case.act(queue, context)
    clock.advance(timedelta(minutes=10))  # past any delay
    claimed = Counter([*(again if case.act is _claim_all else []), *_claim_all(queue, None)])

    assert written == before  # nothing written
    assert claimed == Counter(case.claimable)  # each pending job claimed exactly once
    assert _claim_all(queue, None) == []


def test_a_refused_enqueue_sent_again_once_the_key_is_fixed_is_claimed(
    redis_url: str, clock: ManualClock
) -> None:
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue(Job("t", id="j0", queue="b", priority=1))
    client = redis.Redis.from_url(redis_url)
    ready = f"{prefix}:{{b}}:ready"
    kept = client.dump(ready)
    client.delete(ready)
    client.set(ready, "x")

    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string, not a zset"):
        queue.enqueue(Job("t", id="j1", queue="b", priority=1))
    client.delete(ready)
    client.restore(ready, 0, kept)
    queue.enqueue(Job("t", id="j1", queue="b", priority=1))  # the producer's retry
    record = queue.get("j1", "b")

    assert record is not None
    assert record.state is JobState.READY
    assert sorted(_claim_all(queue, None)) == ["j0", "j1"]


@pytest.mark.parametrize(
    ("call", "count_after"),
    [("claim", b"2"), ("complete", None), ("release", None), ("cancel", b"1")],
)
def test_a_running_count_that_is_no_count_refuses_the_call_naming_its_key_and_fix(
    redis_url: str, clock: ManualClock, call: str, count_after: bytes | None
) -> None:
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue_many(_limited("j1", "j2", limit=_SLOTS))
    lease = _claimed_first(queue, clock)  # j1 runs: one of key k's two slots
    calls: dict[str, Callable[[], object]] = {
        "claim": lambda: _claim_all(queue, None),
        "complete": lambda: queue.complete(lease),
        "release": lambda: queue.release(lease),
        "cancel": lambda: queue.cancel("j2", "b"),
    }
    client = redis.Redis.from_url(redis_url)
    run = f"{prefix}:{{b}}:lim:run:k"
    client.set(run, "one")
    before = _snapshot(client, prefix)

    with pytest.raises(QueueBroken) as raised:
        calls[call]()
    written = _snapshot(client, prefix)
    client.set(run, "1")  # the fix named: how many of the key's jobs run
    calls[call]()

    assert raised.value.queue == "b"
    assert f'{run} holds "one", not a count of running jobs' in str(raised.value)
    assert "set it to how many jobs of its limit key run" in str(raised.value)
    assert written == before
    assert client.get(run) == count_after


def test_a_rate_state_of_the_wrong_type_stops_no_cleanup_of_its_key_s_ended_jobs(
    redis_url: str, clock: ManualClock
) -> None:
    """An ended job holds no turn to pass on: forgetting its record (here, the completion
    that expires it) does not need its key's rate state."""
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue_many(_limited("j1", limit=_MINUTELY))
    queue.complete(_claimed_first(queue, clock))
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:{{b}}:lim:rate:k", "x")
    clock.advance(timedelta(hours=2))  # past the completed record's hour
    queue.enqueue(Job("t", id="j2", queue="b"))

    queue.complete(_claimed_first(queue, clock))  # expires j1's record

    assert queue.get("j1", "b") is None
    j2 = queue.get("j2", "b")
    assert j2 is not None
    assert j2.state is JobState.COMPLETED


@pytest.mark.parametrize("until", list(UniqueUntil))
def test_a_start_or_end_that_meets_its_unique_key_of_another_type_goes_on_whole(
    redis_url: str, clock: ManualClock, until: UniqueUntil
) -> None:
    """A unique key of another type holds no job, so there is nothing to release: the start
    (``until=started``) or the end (``finished``) that releases it is not stopped halfway,
    which would leave the job popped but not leased, or in no set at all."""
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue(Job("t", id="u1", queue="b", unique=UniqueSpec("k", until=until)))
    client = redis.Redis.from_url(redis_url)
    unique = f"{prefix}:{{b}}:u:k"
    client.delete(unique)
    client.hset(unique, "x", "y")

    [lease] = queue.claim(ClaimRequest(["b"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom", "no"), Dead("gave up"))
    record = queue.get("u1", "b")

    assert record is not None
    assert record.state is JobState.DEAD
    assert client.type(unique) == b"hash"  # left as it was, for the operator to repair


def test_a_batch_s_end_goes_on_whole_when_its_callback_id_names_a_key_of_another_type(
    redis_url: str, clock: ManualClock
) -> None:
    """The callback's enqueue asks whether its id is a kept batch's (``b:<id>``): a key of
    another type there holds no batch, so the end that fires it is not stopped halfway (the
    batch ended, its callback never stored)."""
    prefix = unique_prefix("refused")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    then = Job("t", id="cb1", queue="b")
    queue.enqueue_batches(
        [Batch([Job("t", id="m1", queue="b")], id="bt", callbacks={Callback.THEN: then})]
    )
    client = redis.Redis.from_url(redis_url)
    damaged = f"{prefix}:{{b}}:b:cb1"
    client.set(damaged, "x")

    [lease] = queue.claim(ClaimRequest(["b"], lease=LEASE))
    queue.complete(lease, 1)

    assert _claim_all(queue, None) == ["cb1"]
    assert client.get(damaged) == b"x"  # left as it was, for the operator to repair
