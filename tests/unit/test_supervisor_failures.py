"""The supervisor's hard cases, driven by hand: failed attempts, dead children, hard time
limits and unknown handlers (fake children, a memory queue, a manual clock).
"""

from datetime import timedelta

import attrs
import pytest

from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.domain import JobState, RetryPolicy
from tests.pool_support import FAST, Harness


def test_a_failed_attempt_is_retried_by_the_jobs_policy() -> None:
    pool = Harness()
    (job_id,) = pool.enqueue(1, retry=RetryPolicy(max_attempts=3))
    pool.start()

    pool.fail(0, ValueError("nope"))

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state in (JobState.DELAYED, JobState.READY)
    assert [error.type for error in record.errors] == ["ValueError"]
    assert record.errors[0].attempt == 1
    assert pool.events.finished[-1][1].kind is OutcomeKind.RETRIED


def test_the_last_allowed_attempt_failing_sends_the_job_to_the_dead_letters() -> None:
    pool = Harness()
    (job_id,) = pool.enqueue(1, retry=RetryPolicy(max_attempts=1))
    pool.start()

    pool.fail(0, ValueError("nope"))

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason is not None
    assert "gave up after 1 attempts" in record.reason


def test_a_child_that_dies_mid_job_fails_it_with_worker_lost_and_is_replaced() -> None:
    pool = Harness()
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.child_exited(0, -9, pool.now)

    record = pool.queue.get(job_id)
    assert record is not None
    error = record.errors[-1]
    assert error.type == "foundry.application.errors.WorkerLost"
    assert error.signal == 9
    assert pool.workforce.told("spawn") == [0, 1, 0]


@pytest.mark.parametrize("field", ["pid", "token"])
def test_a_reply_from_another_process_or_about_another_lease_settles_nothing_and_kills_the_child(
    field: str,
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    reply = attrs.evolve(pool.answer(0, value="from a forked copy"), **{field: _other(field)})

    pool.sup.child_replied(0, reply, pool.now)

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.ACTIVE
    assert pool.running(0) == job_id
    assert pool.workforce.told("kill") == [0]
    pool.sup.child_exited(0, -9, pool.now)
    record = pool.queue.get(job_id)
    assert record is not None
    assert [error.type for error in record.errors] == ["foundry.application.errors.WorkerLost"]
    assert record.result is None


def _other(field: str) -> object:
    return 99999 if field == "pid" else "someone-else.1"


def test_a_job_past_its_hard_limit_is_terminated_then_killed_and_fails_with_time_limit() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, term_grace=timedelta(seconds=2)))
    (job_id,) = pool.enqueue(1, timeout=timedelta(seconds=5))
    pool.start()

    pool.advance(4.9)
    before = list(pool.workforce.commands)
    pool.advance(0.1)
    terminated = pool.workforce.told("terminate")
    pool.advance(2)
    pool.sup.child_exited(0, -9, pool.now)

    assert ("terminate", 0) not in before
    assert terminated == [0]
    assert pool.workforce.told("kill") == [0]
    record = pool.queue.get(job_id)
    assert record is not None
    assert record.errors[-1].type == "foundry.application.errors.TimeLimitExceeded"


def test_an_unknown_handler_is_retried_during_its_grace_and_dead_after() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1, name="not.deployed.yet", created_at=pool.clock.now())

    pool.start()
    retried = pool.queue.get(job_id)
    pool.advance(31)

    assert retried is not None
    assert retried.state is JobState.DELAYED
    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason is not None
    assert "unknown handler 'not.deployed.yet': still not registered 30s after" in record.reason
    assert pool.workforce.tasks == []


def test_an_unknown_handlers_grace_retries_spend_no_attempt_and_it_dies_once_grace_ends() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    created = pool.clock.now()
    (job_id,) = pool.enqueue(
        1, name="not.deployed.yet", created_at=created, retry=RetryPolicy(max_attempts=2)
    )
    pool.start()

    for _ in range(5):
        pool.advance(5)
    during_grace = pool.queue.get(job_id)
    pool.advance(6)

    assert during_grace is not None
    assert (during_grace.state, during_grace.attempts) == (JobState.DELAYED, 0)
    assert not during_grace.errors
    [letter] = pool.queue.dead("default")
    assert letter.job.id == job_id
    assert letter.reason is not None
    assert letter.reason.startswith("unknown handler 'not.deployed.yet'")
    assert [error.type for error in letter.errors] == ["foundry.domain.errors.UnknownHandler"]
    assert pool.workforce.tasks == []
