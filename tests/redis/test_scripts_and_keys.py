"""(b) scripts survive SCRIPT FLUSH and FUNCTION FLUSH; (c) one Cluster slot per queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Dead, ErrorInfo, InvalidJob, InvalidQueueName, Job, Retry, UniqueSpec
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix

LEASE = timedelta(seconds=30)
queue_names = st.from_regex(r"[A-Za-z0-9_.:\-]{1,100}", fullmatch=True)


@pytest.mark.redis
def test_every_operation_works_after_script_flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=unique_prefix(), clock=ManualClock())

    def flush() -> None:
        client.script_flush()
        client.function_flush()

    flush()
    queue.enqueue(Job("t", id="a"))
    flush()
    queue.enqueue_many([Job("t", id="b"), Job("t", id="c"), Job("t", id="d")])
    flush()
    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=4))
    flush()
    renewed = queue.renew(leases, LEASE)
    flush()
    queue.complete(leases[0])
    flush()
    queue.complete_many(leases[1:2])
    flush()
    applied, none_left = queue.complete_and_claim(
        [leases[1]], [None], ClaimRequest(["default"], lease=LEASE)
    )
    flush()
    state = queue.fail(leases[2], ErrorInfo("Boom"), Dead("boom"))
    flush()
    queue.release(leases[3])
    flush()
    recovered = queue.reap()
    flush()
    requeued = queue.requeue_dead("default")
    flush()
    stats = queue.stats("default")
    flush()
    deleted = queue.delete("default", "d")
    flush()
    purged = queue.purge("default")

    assert [lease.job_id for lease in leases] == ["a", "b", "c", "d"]
    assert all(lease is not None for lease in renewed)
    assert (applied, none_left) == ([True], [])
    assert (state.value, recovered, requeued, deleted, purged) == ("dead", 0, 1, True, 1)
    assert (stats.ready, stats.completed, stats.failed) == (2, 2, 1)


@given(name=queue_names, unique_key=st.text(min_size=1, max_size=50), token=st.text("ab-_9"))
def test_every_key_of_a_queue_hashes_to_the_slot_of_its_name(
    name: str, unique_key: str, token: str
) -> None:
    keys = QueueKeys.of("foundry", name)
    # The keys the scripts build from the queue's base (the key table of the Lua library):
    # a unique key's holder and a claim token's record.
    built = (f"{keys.base}u:{unique_key}", f"{keys.base}t:{token or 't'}")

    slots = {key_slot(key.encode()) for key in (*keys.all, *built)}

    assert slots == {key_slot(name.encode())}


@pytest.mark.redis
def test_after_a_whole_job_life_every_stored_key_of_the_queue_is_in_its_slot(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = unique_prefix()
    queue = RedisQueue(client, prefix=prefix, clock=ManualClock())
    name = "orders.eu-west:1"
    queue.enqueue_many([Job("t", queue=name, unique=UniqueSpec("k")), Job("t", queue=name)])
    leases = queue.claim(ClaimRequest([name], lease=LEASE, limit=2, claim_token="tok"))
    queue.fail(leases[0], ErrorInfo("Boom"), Retry(timedelta(seconds=5)))
    queue.complete(leases[1], {"r": 1})

    stored = [key for key in client.scan_iter(match=f"{prefix}:*")]

    others = {KeyLayout(prefix).registry.encode()}
    slots = {key_slot(key) for key in stored if key not in others}
    base = QueueKeys.of(prefix, name).base
    assert {f"{base}t:tok".encode(), f"{base}u:k".encode()} <= set(stored)
    assert len(stored) > 8
    assert slots == {key_slot(name.encode())}


@pytest.mark.parametrize("name", ["{orders}", "a{b", "c}d", "", "x" * 101, "with space"])
def test_a_queue_name_with_braces_or_bad_characters_is_rejected_naming_the_rule(
    name: str,
) -> None:
    queue = RedisQueue(redis.Redis(port=1), prefix="foundry")  # never reached: nothing is sent

    with pytest.raises(InvalidQueueName, match="no braces"):
        queue.stats(name)
    with pytest.raises(InvalidQueueName, match="no braces"):
        queue.claim(ClaimRequest([name], lease=LEASE))
    with pytest.raises(InvalidJob, match="queue"):
        Job("t", queue=name)


@pytest.mark.redis
def test_ready_scores_are_exact_integers_at_the_extremes_of_priority_and_seq(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = unique_prefix()
    queue = RedisQueue(client, prefix=prefix, clock=ManualClock())
    keys = QueueKeys.of(prefix, "default")
    queue.enqueue(Job("t", id="first"))
    seq = 2**44 - 3  # the last seqs that stay inside a priority's band
    client.hset(keys.named("meta"), "seq", seq)

    queue.enqueue_many([Job("t", id="low", priority=-255), Job("t", id="high", priority=255)])

    scores = dict(client.zrange(keys.named("ready"), 0, -1, withscores=True, score_cast_func=int))
    assert scores[b"low"] == 510 * 2**44 + seq + 1
    assert scores[b"high"] == seq + 2
    assert [
        lease.job_id for lease in queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3))
    ] == [
        "high",
        "first",
        "low",
    ]
