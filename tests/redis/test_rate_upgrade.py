"""Rate state written by the release before a key's turn was passed on (`lim:next`, `lim:tail`,
`lim:resv`), met by this release after an upgrade: no start comes early, the jobs delayed to
a turn of their own line up, and the old hashes go; a next start that cannot be read (old or
new) stops no claim. On every Redis variant the tests cover."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Limit, Rate, RunAt
from foundry.ports import ClaimRequest
from tests.backends import LEASE, QUEUE_BACKENDS, Queue, QueueOptions, job

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)
LIMIT = Limit("k", rate=Rate(1, HOUR))
REDIS_VARIANTS = [name for name in QUEUE_BACKENDS if name.startswith("redis")]


@pytest.fixture(params=REDIS_VARIANTS)
def redis_queue(request: pytest.FixtureRequest, clock: ManualClock) -> RedisQueue:
    built = QUEUE_BACKENDS[request.param].build(request.getfixturevalue, clock, QueueOptions())
    assert isinstance(built, RedisQueue)
    return built


def _claim(queue: Queue) -> list[str]:
    return [lease.job_id for lease in queue.claim(ClaimRequest(["default"], lease=LEASE))]


def _write_previous_release_state(queue: RedisQueue, clock: ManualClock) -> None:
    """What the previous release left after j0 started now at '1/h' with j1..j3 behind it:
    each of those delayed to a turn of its own (one hour apart, in `delayed` at that time,
    marked in lim:resv), the key's next start in lim:next and the end of its turns in lim:tail.
    The jobs are written by this release, delayed to their turns: the same records."""
    start_ms = int(clock.now().timestamp() * 1000)
    queue.enqueue_many(
        [job(id=f"j{n}", limit=LIMIT, schedule=RunAt(clock.now() + n * HOUR)) for n in (1, 2, 3)]
    )
    keys, client = queue._keys.queue("default"), queue._runner.client
    hour_ms = 3_600_000
    client.hset(keys.named("lim:next"), "k", start_ms + hour_ms)
    client.hset(keys.named("lim:tail"), "k", start_ms + 4 * hour_ms)
    client.hset(keys.named("lim:resv"), mapping={"j1": "1", "j2": "1", "j3": "1"})


def test_the_previous_release_s_rate_state_is_kept_and_its_waiting_jobs_line_up(
    redis_queue: RedisQueue, clock: ManualClock
) -> None:
    _write_previous_release_state(redis_queue, clock)
    redis_queue.enqueue(job(id="fresh", limit=LIMIT))

    at_once = _claim(redis_queue)  # the first claim since the upgrade
    redis_queue.cancel("j1")
    redis_queue.cancel("j2")
    clock.advance(HOUR)
    an_hour_on = _claim(redis_queue), _claim(redis_queue)
    clock.advance(HOUR)
    two_hours_on = _claim(redis_queue)

    assert at_once == []  # j0 started an hour ago's turn: nothing before it ends
    assert an_hour_on == (["j3"], [])  # j1's and j2's turns passed on; one start per hour
    assert two_hours_on == ["fresh"]
    keys, client = redis_queue._keys.queue("default"), redis_queue._runner.client
    old = [keys.named(name) for name in ("lim:next", "lim:tail", "lim:resv")]
    assert client.exists(*old) == 0


def test_a_key_with_no_job_waiting_keeps_the_previous_release_s_next_start(
    redis_queue: RedisQueue, clock: ManualClock
) -> None:
    keys, client = redis_queue._keys.queue("default"), redis_queue._runner.client
    start_ms = int(clock.now().timestamp() * 1000)
    redis_queue.enqueue(job(id="other"))  # the queue exists, as it did before the upgrade
    client.hset(keys.named("lim:next"), mapping={"k": start_ms + 3_600_000, "gone": start_ms})
    client.hset(keys.named("lim:tail"), mapping={"k": start_ms + 3_600_000, "gone": start_ms})
    clock.advance(timedelta(minutes=10))
    redis_queue.enqueue(job(id="fresh", limit=LIMIT))

    first = _claim(redis_queue), _claim(redis_queue)
    clock.advance(timedelta(minutes=50))
    later = _claim(redis_queue)

    assert first == (["other"], [])
    assert later == ["fresh"]
    assert client.exists(keys.named("lim:next"), keys.named("lim:rate:gone")) == 0


def test_an_unreadable_next_start_left_by_the_previous_release_does_not_stop_the_claim(
    redis_queue: RedisQueue,
) -> None:
    keys, client = redis_queue._keys.queue("default"), redis_queue._runner.client
    redis_queue.enqueue_many([job(id="other"), job(id="fresh", limit=LIMIT)])
    client.hset(keys.named("lim:next"), "k", "not a time")

    assert _claim(redis_queue) == ["other"]
    assert _claim(redis_queue) == ["fresh"]
    assert client.exists(keys.named("lim:next")) == 0


def test_an_unreadable_next_start_of_a_key_does_not_stop_the_claim_or_a_cancel(
    redis_queue: RedisQueue,
) -> None:
    keys, client = redis_queue._keys.queue("default"), redis_queue._runner.client
    redis_queue.enqueue_many([job(id=f"j{n}", limit=LIMIT) for n in range(3)])
    assert _claim(redis_queue) == ["j0"]  # j1 holds the turn, j2 waits in line
    client.hset(keys.named("lim:rate:k"), "next", "not a time")

    redis_queue.cancel("j1")  # j2 takes the turn, due at once: the next start is unreadable

    assert _claim(redis_queue) == ["j2"]


def test_a_job_the_upgrade_s_first_claim_makes_due_is_claimed_by_that_claim(
    redis_queue: RedisQueue, clock: ManualClock
) -> None:
    """The previous release gave j1 a turn an hour on, but the key's next start has come: in
    line first, j1 holds that start, due now, and the claim that lined it up takes it."""
    keys, client = redis_queue._keys.queue("default"), redis_queue._runner.client
    start_ms = int(clock.now().timestamp() * 1000)
    redis_queue.enqueue(job(id="j1", limit=LIMIT, schedule=RunAt(clock.now() + HOUR)))
    client.hset(keys.named("lim:next"), "k", start_ms)
    client.hset(keys.named("lim:resv"), "j1", "1")

    assert _claim(redis_queue) == ["j1"]
