"""The ready jobs' two places on Redis: the fifo (jobs enqueued ready at priority 0, as pairs
of id and seq) and the `ready` sorted set (every other ready job), merged in claim order; and
a pending job stored by the earlier layout (every ready job in `ready`) after an upgrade."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Batch, Callback, ErrorInfo, Job, JobState, Retry, RunAfter
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix

LEASE = timedelta(seconds=30)
BAND = 2**44


@attrs.frozen
class Setup:
    client: redis.Redis
    queue: RedisQueue
    keys: QueueKeys
    clock: ManualClock

    def claim(self, limit: int = 100) -> list[str]:
        request = ClaimRequest(["q"], lease=LEASE, limit=limit)
        return [lease.job_id for lease in self.queue.claim(request)]

    def fifo(self) -> list[bytes]:
        return self.client.lrange(self.keys.named("fifo"), 0, -1)  # type: ignore[no-any-return]


@pytest.fixture
def setup(redis_url: str) -> Setup:
    client = redis.Redis.from_url(redis_url)
    prefix, clock = unique_prefix(), ManualClock()
    return Setup(
        client, RedisQueue(client, prefix=prefix, clock=clock), QueueKeys.of(prefix, "q"), clock
    )


def jobs(*ids: str) -> list[Job]:
    return [Job("t", id=job_id, queue="q") for job_id in ids]


@pytest.mark.redis
def test_a_job_enqueued_ready_at_priority_0_is_kept_in_the_fifo_not_the_sorted_set(
    setup: Setup,
) -> None:
    setup.queue.enqueue_many([*jobs("a"), Job("t", id="b", queue="q", priority=1)])

    assert setup.fifo() == [b"a", b"1"]
    assert setup.client.zrange(setup.keys.named("ready"), 0, -1) == [b"b"]
    assert setup.queue.stats("q").ready == 2


@pytest.mark.redis
@pytest.mark.parametrize(
    "before", [0, 8, 998, 999, 1_000, 1_009, 1_099, 9_999, 123_455, 999_999, 2**40 + 6]
)
def test_a_plain_enqueue_writes_its_seq_in_the_fifo_as_its_decimal_digits(
    setup: Setup, before: int
) -> None:
    setup.queue.enqueue(Job("t", id="first", queue="q"))  # the queue's meta exists
    setup.client.hset(setup.keys.named("meta"), "seq", before)

    setup.queue.enqueue(Job("t", id="next", queue="q"))
    setup.queue.enqueue(Job("t", id="after", queue="q"))

    assert setup.fifo()[2:] == [b"next", b"%d" % (before + 1), b"after", b"%d" % (before + 2)]


@pytest.mark.redis
def test_a_pending_job_stored_by_the_earlier_layout_is_claimed_in_its_place(
    setup: Setup,
) -> None:
    setup.queue.enqueue_many(jobs("first"))  # seq 1; the queue's keys and epoch exist
    # What the earlier layout's enqueue stored for a ready job: its record, and its id in
    # `ready` by (255 - priority) * 2^44 + seq, the queue's seq counter advanced.
    setup.client.hset(setup.keys.named("jobs"), "old", "0 0 3 0 =t")
    setup.client.zadd(setup.keys.named("ready"), {"old": 255 * BAND + 2})
    setup.client.hset(setup.keys.named("meta"), "seq", 2)

    setup.queue.enqueue_many(jobs("new"))

    assert setup.queue.stats("q").ready == 3
    assert [r.job.id for r in setup.queue.jobs("q", JobState.READY)] == ["first", "old", "new"]
    assert setup.claim(limit=2) == ["first", "old"]
    assert setup.claim() == ["new"]


@pytest.mark.redis
def test_jobs_back_from_a_lease_or_a_delay_take_their_place_among_the_fifo_jobs(
    setup: Setup,
) -> None:
    later = Job("t", id="later", queue="q", schedule=RunAfter(timedelta(seconds=1)))
    setup.queue.enqueue_many([*jobs("a"), later, *jobs("b", "c")])  # seqs 1, 2, 3, 4
    (a,) = setup.queue.claim(ClaimRequest(["q"], lease=LEASE))
    (b,) = setup.queue.claim(ClaimRequest(["q"], lease=LEASE))
    setup.queue.fail(a, ErrorInfo("Boom"), Retry(timedelta(0)))  # a new seq: 5
    setup.queue.release(b)  # its seq kept: 3

    setup.clock.advance(timedelta(seconds=1))  # later is due, its seq kept: 2

    assert [r.job.id for r in setup.queue.jobs("q", JobState.READY)] == ["later", "b", "c", "a"]
    assert setup.claim(limit=2) == ["later", "b"]
    assert setup.claim() == ["c", "a"]


@pytest.mark.redis
def test_cancel_and_delete_take_a_job_out_of_the_fifo_even_when_its_id_is_another_seq(
    setup: Setup,
) -> None:
    setup.queue.enqueue_many(jobs("3", "1", "2", "4"))  # fifo: 3 1 1 2 2 3 4 4

    cancelled = setup.queue.cancel("1", "q")
    deleted = setup.queue.delete("q", "2")

    assert (cancelled, deleted) == (JobState.CANCELLED, True)
    assert setup.fifo() == [b"3", b"1", b"4", b"4"]
    assert setup.queue.stats("q").ready == 2
    assert setup.claim() == ["3", "4"]


@pytest.mark.redis
def test_cancelling_a_batch_takes_its_pending_members_out_of_the_fifo_in_one_pass(
    setup: Setup,
) -> None:
    members = [f"m{i}" for i in range(40)]
    before = [f"b{i}" for i in range(2_100)]  # with the members, more than one pass's 4,000
    setup.queue.enqueue_many(jobs(*before[:1_000]))
    setup.queue.enqueue_batches([Batch(tuple(jobs(*members)), id="batch")])
    setup.queue.enqueue_many(jobs(*before[1_000:], "after"))

    setup.queue.cancel_batch("batch", "q")

    kept = setup.fifo()
    assert kept[::2] == [job_id.encode() for job_id in [*before, "after"]]
    assert [int(seq) for seq in kept[1::2]] == [*range(1, 1_001), *range(1_041, 2_142)]
    assert setup.queue.stats("q").ready == 2_101


@pytest.mark.redis
def test_purge_removes_the_fifo_jobs_too(setup: Setup) -> None:
    setup.queue.enqueue_many(
        [*jobs(*(f"j{i}" for i in range(600))), Job("t", id="p", queue="q", priority=2)]
    )

    removed = setup.queue.purge("q")

    assert (removed, setup.fifo(), setup.queue.stats("q").ready) == (601, [], 0)


@pytest.mark.redis
def test_a_batch_member_that_ends_at_once_keeps_the_fifo_in_seq_order(setup: Setup) -> None:
    # Its catch callback is enqueued by a nested call in the middle of the batch's enqueue.
    setup.queue.enqueue_many(jobs("gone"))
    setup.queue.cancel("gone", "q")
    doomed = Job("t", id="m2", queue="q", after=("gone",), after_failure="dead")
    members = (*jobs("m1"), doomed, *jobs("m3"))
    callbacks = {Callback.CATCH: Job("t", id="cb", queue="q")}
    setup.queue.enqueue_batches([Batch(members, callbacks, id="batch")])
    setup.queue.enqueue_many(jobs("after"))

    seqs = [int(seq) for seq in setup.fifo()[1::2]]
    assert seqs == sorted(set(seqs))
    assert setup.claim() == ["m1", "cb", "m3", "after"]
