"""A key of the wrong type in one queue is not an outage: that queue is named broken (with
the key), the others are served, and the CLI tells broken data (exit 1) from unreachable (3)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.upkeep import REAP_EVERY_S
from foundry.domain import Job, JobState, QueueBroken, QueuesBroken, UniqueSpec
from foundry.entrypoints.settings import Settings
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix
from tests.cli_support import container_for, invoke
from tests.pool_support import FAST, Harness

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def _queue(redis_url: str, clock: ManualClock | None = None) -> tuple[RedisQueue, str]:
    prefix = unique_prefix("broken")
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock), prefix


def test_a_claim_meeting_a_key_of_the_wrong_type_names_the_queue_and_the_key(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", queue="b"), Job("t", id="c1", queue="c")])
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:ready", "x")

    with pytest.raises(QueueBroken) as raised:
        queue.claim(ClaimRequest(["b", "c"], lease=LEASE))
    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string, not a zset"):
        queue.stats("b")
    [lease] = queue.claim(ClaimRequest(["c"], lease=LEASE))

    assert raised.value.queue == "b"
    assert f"{prefix}:{{b}}:ready is a string, not a zset" in str(raised.value)
    assert "WRONGTYPE" in str(raised.value)
    assert lease.job_id == "c1"
    assert queue.stats("c").active == 1
    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string"):
        queue.enqueue(Job("t", queue="b", priority=1))  # priority 0 would join the fifo


def test_reap_and_renew_serve_the_other_queues_around_a_broken_one(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", id="b1", queue="b"), Job("t", id="c1", queue="c")])
    leases = queue.claim(ClaimRequest(["b", "c"], lease=LEASE, limit=2))
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:leases", "x")

    renewed = queue.renew(leases, LEASE)
    clock.advance(LEASE * 3)
    with pytest.raises(QueueBroken, match="leases is a string"):
        queue.reap()
    record = queue.get("c1")

    assert [lease is not None for lease in renewed] == [False, True]
    assert record is not None
    assert (record.state, record.attempts) == (JobState.READY, 1)  # reaped all the same


def test_enqueue_many_names_the_queue_that_refused_its_jobs_and_stores_the_others(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue(Job("t", queue="b"))
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:ready", "x")
    jobs = [Job("t", id="a1", queue="a"), Job("t", id="b1", queue="b", priority=1)]

    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string") as raised:
        queue.enqueue_many([*jobs, Job("t", id="c1", queue="c")])
    records = [queue.get(job_id) for job_id in ("a1", "c1")]

    assert raised.value.queue == "b"
    assert [record.state for record in records if record is not None] == [JobState.READY] * 2


def _b_broken_c_fine(redis_url: str, clock: ManualClock) -> RedisQueue:
    """A queue with a job in each of ``b`` and ``c``, ``b``'s ready set a string."""
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", queue="b"), Job("t", queue="c")])
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:ready", "x")
    return queue


def test_stats_shows_the_others_and_exits_1_naming_the_broken_queue(
    redis_url: str, clock: ManualClock
) -> None:
    queue = _b_broken_c_fine(redis_url, clock)

    shown = invoke(container_for(queue, clock, Settings()), "stats")
    checked = invoke(container_for(queue, clock, Settings()), "check")

    assert shown.exit_code == 1, shown.output
    assert "c" in shown.stdout
    assert "broken" in shown.stdout
    assert "{b}:ready is a string" in shown.stderr
    assert checked.exit_code == 1, checked.output
    assert "{b}:ready is a string" in checked.stderr


def test_stats_as_json_names_the_broken_queue_and_exits_1(
    redis_url: str, clock: ManualClock
) -> None:
    queue = _b_broken_c_fine(redis_url, clock)

    shown = invoke(container_for(queue, clock, Settings()), "stats", "--json")

    assert shown.exit_code == 1, shown.output
    rows = {row["queue"]: row for row in json.loads(shown.stdout)["queues"]}
    assert "{b}:ready is a string" in rows["b"]["broken"]
    assert rows["c"]["ready"] == 1


def test_a_worker_quarantines_the_broken_queue_and_drains_the_others(redis_url: str) -> None:
    queue, prefix = _queue(redis_url)
    jobs = [Job("e2e.add", queue="c", payload={"a": n, "b": 1}) for n in range(5)]
    queue.enqueue_many([Job("e2e.add", queue="b", payload={"a": 0, "b": 0}), *jobs])
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:ready", "x")
    ledger = Path(os.environ.get("TMPDIR", "/tmp")) / f"{prefix}.ledger"
    env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "PYTHONPATH": str(ROOT)}
    env["FOUNDRY_E2E_LEDGER"] = str(ledger)

    done = subprocess.run(
        [sys.executable, "-c", "from foundry.entrypoints.cli import main; main()", "work",
         "--app", "tests.e2e.apps:registry", "--queues", "b,c", "--burst", "--concurrency", "1"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    ledger.unlink(missing_ok=True)

    assert done.returncode == 0, done.stderr
    assert [queue.get(job.id).state for job in jobs] == [JobState.COMPLETED] * 5  # type: ignore[union-attr]
    assert done.stderr.count("queue 'b' is broken") == 1
    assert "queue unavailable" not in done.stderr
    assert "left: b (broken)" in done.stderr


def test_an_argument_redis_py_cannot_send_is_a_type_error_not_an_outage(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    with pytest.raises(TypeError, match="get got an argument Redis cannot take"), guard("get"):
        client.get(["not", "a", "key"])  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["jobs", "state", "errors"])
def test_reads_meeting_a_record_hash_of_the_wrong_type_name_the_queue_not_an_outage(
    redis_url: str, clock: ManualClock, key: str
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", id="b1", queue="b", priority=1), Job("t", id="c1", queue="c")])
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{prefix}:{{b}}:{key}")
    client.set(f"{prefix}:{{b}}:{key}", "x")
    wrong = rf"\{{b\}}:{key} is a string, not a hash"

    reads: list[Callable[[], object]] = [
        lambda: queue.get("b1", "b"),
        lambda: queue.jobs("b", JobState.READY),
    ]
    if key != "state":  # the oldest wait reads no state
        reads.append(lambda: queue.oldest_ready_age(["c", "b"]))
    for read in reads:
        with pytest.raises(QueueBroken, match=wrong) as raised:
            read()
        assert raised.value.queue == "b"

    assert queue.get("c1", "c") is not None
    assert queue.oldest_ready_age(["c"]) == [timedelta(0)]


def test_a_completion_redis_refuses_for_good_names_the_queue_broken_not_an_outage(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue(Job("t", id="u1", queue="b", unique=UniqueSpec("report")))
    [lease] = queue.claim(ClaimRequest(["b"], lease=LEASE))
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{prefix}:{{b}}:u:report")
    client.hset(f"{prefix}:{{b}}:u:report", "x", "y")  # the job's unique key, of another type

    with pytest.raises(QueueBroken) as completing:
        queue.complete(lease, 1)
    [batching] = queue.complete_many([lease], [1])
    record = queue.get("u1")

    assert isinstance(batching, QueueBroken)
    assert completing.value.queue == batching.queue == "b"
    assert "WRONGTYPE" in str(completing.value)
    assert record is not None
    assert record.state is JobState.ACTIVE  # nothing written


def test_a_job_is_found_by_id_around_a_queue_whose_data_is_broken(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", id="b1", queue="b"), Job("t", id="c1", queue="c")])
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:results", "x")

    found = queue.get("c1")
    with pytest.raises(QueueBroken, match=r"\{b\}:results is a string") as raised:
        queue.get("nowhere")

    assert found is not None
    assert found.job.queue == "c"
    assert raised.value.queue == "b"  # the job may be in it: not "no such job"


def test_reap_names_every_queue_that_refused_and_counts_what_the_others_gave_back(
    redis_url: str, clock: ManualClock
) -> None:
    queue, prefix = _queue(redis_url, clock)
    jobs = [Job("t", id=f"{name}1", queue=name) for name in ("a", "b", "c")]
    queue.enqueue_many(jobs)
    queue.claim(ClaimRequest(["a", "b", "c"], lease=LEASE, limit=3))
    client = redis.Redis.from_url(redis_url)
    for name in ("a", "b"):
        client.set(f"{prefix}:{{{name}}}:leases", "x")
    clock.advance(LEASE * 3)

    with pytest.raises(QueuesBroken) as raised:
        queue.reap()

    assert [error.queue for error in raised.value.broken] == ["a", "b"]
    assert all("leases is a string" in str(error) for error in raised.value.broken)
    assert raised.value.done == 1
    assert "'a' is broken" in str(raised.value)
    assert "'b' is broken" in str(raised.value)


def test_a_worker_leaves_out_no_queue_of_its_own_for_another_queue_reap_found_broken(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = PoolConfig(queues=("c",), concurrency=1, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=lambda clock: _queue(redis_url, clock)[0])  # type: ignore[arg-type,return-value]
    queue = pool.queue
    assert isinstance(queue, RedisQueue)
    queue.enqueue_many([Job("work", id="b1", queue="b"), Job("work", id="c1", queue="c")])
    queue.claim(ClaimRequest(["b"], lease=LEASE))  # another worker's, which died
    queue._runner.client.set(f"{queue._keys.prefix}:{{b}}:leases", "x")
    pool.clock.advance(LEASE * 3)

    with caplog.at_level(logging.INFO, "foundry"):
        pool.start()
        pool.advance(REAP_EVERY_S)

    assert pool.sup._quarantine.broken(pool.now) == []
    assert "'b' is broken" not in caplog.text
    assert pool.running(0) == "c1"


@pytest.mark.parametrize("act", ["pause", "resume"])
def test_pause_and_resume_on_a_meta_of_the_wrong_type_name_the_queue_broken(
    redis_url: str, act: str
) -> None:
    queue, prefix = _queue(redis_url)
    redis.Redis.from_url(redis_url).set(f"{prefix}:{{b}}:meta", "x")

    with pytest.raises(QueueBroken, match=r"\{b\}:meta is a string, not a hash") as raised:
        getattr(queue, act)("b")
    queue.pause("c")

    assert raised.value.queue == "b"
    assert queue.stats("c").paused
