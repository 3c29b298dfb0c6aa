"""The supervisor's decisions, driven by hand: fake children, a memory queue, a manual clock."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from loguru import logger

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.outcome import OutcomeKind
from foundry.application.pool.respawn import MAX_SPAWN_FAILURES
from foundry.application.pool.settle import FLUSH_AFTER_S
from foundry.application.pool.slots import SlotState
from foundry.application.pool.wire import Reply
from foundry.domain import JobState, RetryPolicy
from tests.pool_support import BatchingQueue, CombiningQueue, Harness

FAST = timedelta(milliseconds=1)


def test_nothing_is_claimed_until_a_child_reports_ready() -> None:
    pool = Harness()
    pool.enqueue(3)

    pool.sup.start()
    pool.sup.fill(pool.now)

    assert pool.workforce.tasks == []
    assert pool.queue.stats("default").ready == 3


def test_each_ready_child_gets_one_job_and_the_rest_stay_in_the_queue() -> None:
    pool = Harness()
    pool.enqueue(3)

    pool.start()

    assert [slot for slot, _ in pool.workforce.tasks] == [0, 1]
    assert pool.queue.stats("default").ready == 1
    assert [pid for _, pid in pool.events.started] == [pool.sup.slots[0].pid, pool.sup.slots[1].pid]


def test_prefetch_claims_extra_jobs_that_the_parent_holds() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=2, idle_wait=FAST))
    pool.enqueue(5)

    pool.start()

    assert len(pool.workforce.tasks) == 1
    assert len(pool.sup.buffer) == 2
    assert pool.queue.stats("default").active == 3


def test_prefetch_is_topped_up_only_once_half_of_it_is_spent() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=4, idle_wait=FAST))
    pool.enqueue(10)
    pool.start()  # one running, four held
    pool.reply(0)  # three held: more than half, no claim
    held_after_one = len(pool.sup.buffer)

    pool.reply(0)  # two held: half spent, topped up to four

    assert (held_after_one, len(pool.sup.buffer)) == (3, 4)


def test_by_default_the_parent_claims_only_for_idle_children() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.000_1)
    pool.reply(1, runtime=0.000_1)

    assert len(pool.sup.buffer) == 0
    assert pool.queue.stats("default").active == 2


def test_short_jobs_raise_an_adaptive_prefetch_so_claims_come_in_batches() -> None:
    window = timedelta(milliseconds=5)
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=window))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.000_1)  # its completion rides with this claim: counted after it
    pool.reply(1, runtime=0.000_1)  # 2 children finish 100 jobs of 0.1 ms in 5 ms: capped at 64

    assert len(pool.sup.buffer) == 64  # claimed 65: one for the idle child, 64 held
    assert pool.queue.stats("default").active == 66


def test_long_jobs_keep_the_configured_prefetch() -> None:
    pool = Harness(PoolConfig(concurrency=2, prefetch=1, idle_wait=FAST))
    pool.enqueue(10)
    pool.start()

    pool.reply(0, runtime=2.0)
    pool.reply(1, runtime=2.0)

    assert len(pool.sup.buffer) == 1


def test_replies_read_in_one_turn_of_the_loop_are_completed_in_one_batch() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=BatchingQueue)
    first, second = pool.enqueue(2)
    pool.start()
    pool.sup.child_replied(0, Reply(True, None, 0.01), pool.now)
    pool.sup.child_replied(1, Reply(True, None, 0.01), pool.now)
    pending = pool.queue.get(first)

    pool.sup.fill(pool.now)  # the loop turns: one write settles both, then it claims

    assert pending is not None
    assert pending.state is JobState.ACTIVE
    assert isinstance(pool.queue, BatchingQueue)
    assert pool.queue.batches == 1
    assert [pool.queue.get(job_id).state for job_id in (first, second)] == [JobState.COMPLETED] * 2  # type: ignore[union-attr]
    assert [outcome.kind for _, outcome in pool.events.finished] == [OutcomeKind.COMPLETED] * 2


def test_a_queue_that_can_completes_the_batch_and_claims_in_one_call() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=CombiningQueue)
    first, second, third, fourth = pool.enqueue(4)
    pool.start()
    pool.sup.child_replied(0, Reply(True, None, 0.01), pool.now)
    pool.sup.child_replied(1, Reply(True, None, 0.01), pool.now)

    pool.sup.fill(pool.now)

    assert isinstance(pool.queue, CombiningQueue)
    assert (pool.queue.combined, pool.queue.batches) == (1, 0)
    assert [pool.queue.get(job_id).state for job_id in (first, second)] == [JobState.COMPLETED] * 2  # type: ignore[union-attr]
    assert sorted([pool.running(0), pool.running(1)]) == sorted([third, fourth])


def test_completions_a_combined_call_could_not_write_are_retried_and_the_claim_resent() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=CombiningQueue)
    first, second = pool.enqueue(2)
    pool.start()
    pool.queue.down = True
    pool.reply(0)
    pool.queue.down = False

    pool.advance(1)

    assert isinstance(pool.queue, CombiningQueue)
    assert pool.queue.get(first).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert pool.running(0) == second
    assert pool.queue.tokens[-2] == pool.queue.tokens[-1]  # the failed claim's token, again
    assert len(set(pool.queue.tokens)) == len(pool.queue.tokens) - 1
    assert [outcome.kind for _, outcome in pool.events.finished] == [OutcomeKind.COMPLETED]


def test_batched_completions_the_queue_cannot_take_are_retried_from_the_outbox() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=BatchingQueue)
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.reply(0)
    pool.queue.down = True
    pool.sup.settler.flush()
    pool.queue.down = False

    pool.advance(1)

    assert pool.queue.get(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]


def test_a_result_completes_the_job_and_the_child_gets_the_next_one() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST))
    first, second = pool.enqueue(2)
    pool.start()

    pool.reply(0, value={"answer": 42})

    record = pool.queue.get(first)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, {"answer": 42})
    assert pool.running(0) == second


def test_a_pool_that_turns_idle_after_a_busy_poll_claims_a_new_job_without_waiting() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    pool.enqueue(1)
    pool.start()  # one child busy, the other finds the queue empty: a busy poll
    pool.sup.child_replied(0, Reply(True, None, 0.01), pool.now)
    (late,) = pool.enqueue(1)

    pool.sup.quiet(pool.now)  # its completion is written, then the idle pool claims

    assert pool.running(0) == late


def test_a_pool_its_batched_completions_left_idle_claims_at_once_when_quiet() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=BatchingQueue)
    pool.enqueue(1)
    pool.start()  # one child busy, the other finds the queue empty: a busy poll
    pool.reply(0)  # its completion waits for the next flush
    (late,) = pool.enqueue(1)

    pool.sup.quiet(pool.now)

    assert pool.running(0) == late


def test_while_children_are_busy_a_completion_waits_briefly_for_a_claim_to_carry_it() -> None:
    config = PoolConfig(concurrency=2, prefetch=6, idle_wait=FAST)
    pool = Harness(config, queue=BatchingQueue)
    pool.enqueue(10)
    pool.start()  # two running, five held
    pool.reply(0)  # the next held job goes to child 0; the buffer is still over half full
    assert isinstance(pool.queue, BatchingQueue)

    pool.sup.quiet(pool.now)
    written_at_once = pool.queue.batches
    pool.advance(FLUSH_AFTER_S)
    pool.sup.quiet(pool.now)

    assert (written_at_once, pool.queue.batches) == (0, 1)
    assert pool.sup.next_wake(pool.now) > pool.now


def test_a_completion_that_leaves_every_child_idle_is_written_at_once() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=BatchingQueue)
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.sup.child_replied(0, Reply(True, None, 0.01), pool.now)

    pool.sup.quiet(pool.now)

    assert pool.queue.get(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]


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


def test_leases_are_renewed_in_one_batch_every_third_of_the_lease() -> None:
    pool = Harness()
    first, second = pool.enqueue(2)
    pool.start()
    deadline = pool.queue.get(first).lease_deadline  # type: ignore[union-attr]

    pool.advance(9.9)
    unchanged = pool.queue.get(first).lease_deadline  # type: ignore[union-attr]
    pool.advance(0.1)

    assert unchanged == deadline
    for job_id in (first, second):
        record = pool.queue.get(job_id)
        assert record is not None
        assert record.lease_deadline == pool.clock.now() + timedelta(seconds=30)


def test_a_child_is_told_to_fence_itself_before_the_lease_it_runs_under_lapses() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.enqueue(1)
    claimed_at = pool.now
    pool.start()

    pool.advance(10)

    # the parent fences at local deadline - lease/6; the child half a margin later
    assert pool.workforce.fences == [(0, claimed_at + 27.5), (0, claimed_at + 37.5)]


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    yield messages
    logger.remove(sink)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    warnings: list[str],
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.start()
    pool.queue.down = True

    for _ in range(5):
        pool.advance(1)
    pool.queue.down = False
    pool.advance(1)

    outage = [message for message in warnings if "queue" in message]
    assert len(outage) == 2
    assert outage[0].startswith("queue unavailable (")
    assert outage[1].startswith("queue reachable again after 5.0s")


def test_a_child_whose_lease_cannot_be_renewed_is_killed_before_the_deadline() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.down = True

    pool.advance(10)
    pool.advance(10)
    killed_early = pool.workforce.told("kill")
    pool.advance(5)

    assert killed_early == []
    assert pool.workforce.told("kill") == [0]
    assert pool.sup.slots[0].job is None
    assert pool.events.finished == [(job_id, pool.events.finished[0][1])]
    assert pool.events.finished[0][1].kind is OutcomeKind.ABANDONED


def test_a_fenced_jobs_late_result_is_not_written() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.down = True
    pool.advance(25)
    pool.queue.down = False

    pool.reply(0, value="late")

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.ACTIVE


def test_a_lease_the_queue_gave_away_kills_its_child() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.clock.advance(timedelta(seconds=31))
    pool.queue.reap()

    pool.advance(0)

    assert pool.workforce.told("kill") == [0]
    assert pool.events.finished[0][0] == job_id
    assert pool.events.finished[0][1].kind is OutcomeKind.ABANDONED


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


def test_a_child_is_recycled_after_max_tasks() -> None:
    pool = Harness(PoolConfig(concurrency=1, max_tasks_per_child=2, idle_wait=FAST))
    pool.enqueue(3)
    pool.start()

    pool.reply(0)
    pool.advance(0)
    stopped_after_one = pool.workforce.told("stop")
    pool.reply(0)

    assert stopped_after_one == []
    assert pool.workforce.told("stop") == [0]
    assert pool.sup.slots[0].state is SlotState.RETIRING


def test_a_child_over_the_memory_limit_is_recycled_and_its_job_still_completes() -> None:
    pool = Harness(PoolConfig(concurrency=1, max_memory_per_child_mb=100, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.child_replied(0, _reply_with_rss(200 << 20), pool.now)
    pool.sup.child_exited(0, 0, pool.now)
    pool.sup.quiet(pool.now)  # no child busy: the batched completion is written

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert pool.workforce.told("stop") == [0]
    assert pool.workforce.told("spawn") == [0, 0]


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
    assert "unknown handler 'not.deployed.yet'" in record.reason
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


def test_a_warm_stop_lets_running_jobs_finish_and_releases_prefetched_ones() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST))
    running, buffered = pool.enqueue(2)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(1)
    pool.reply(0)
    pool.advance(0)

    assert pool.queue.get(running).state is JobState.COMPLETED  # type: ignore[union-attr]
    released = pool.queue.get(buffered)
    assert released is not None
    assert (released.state, released.attempts) == (JobState.READY, 0)
    assert pool.sup.finished


def test_jobs_still_running_when_the_grace_ends_are_killed_and_released_unspent() -> None:
    pool = Harness(PoolConfig(concurrency=2, grace=timedelta(seconds=3), idle_wait=FAST))
    first, second = pool.enqueue(2)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(0)
    pool.advance(2.9)
    still_running = pool.sup.finished
    pool.advance(0.1)

    assert not still_running
    assert sorted(pool.workforce.told("kill")) == [0, 1]
    for job_id in (first, second):
        record = pool.queue.get(job_id)
        assert record is not None
        assert (record.state, record.attempts) == (JobState.READY, 0)
    assert pool.sup.finished


def test_a_cold_stop_kills_and_releases_at_once() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.stopping.request(cold=True)
    pool.advance(0)

    assert pool.workforce.told("kill") == [0]
    assert pool.queue.get(job_id).state is JobState.READY  # type: ignore[union-attr]
    assert pool.sup.finished


def test_burst_mode_finishes_once_nothing_is_ready_delayed_or_running() -> None:
    pool = Harness(PoolConfig(concurrency=1, burst=True, idle_wait=FAST))
    pool.enqueue(1)
    pool.start()
    pool.reply(0)

    pool.advance(1)
    pool.advance(0)

    assert pool.sup.finished
    assert pool.sup.exit_code is None


def test_burst_mode_waits_for_delayed_retries() -> None:
    pool = Harness(PoolConfig(concurrency=1, burst=True, idle_wait=FAST))
    (job_id,) = pool.enqueue(1, retry=RetryPolicy(max_attempts=2))
    pool.start()
    pool.fail(0, ValueError("once"))

    pool.advance(0)
    waiting = pool.sup.finished
    pool.advance(2)
    pool.reply(0)
    pool.advance(0.1)
    pool.advance(0)

    assert not waiting
    assert pool.queue.get(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert pool.sup.finished


def test_children_that_keep_dying_before_ready_stop_the_pool_with_exit_code_1() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.sup.start()

    for _ in range(3):
        pool.sup.child_exited(0, 1, pool.now)
    pool.advance(0)

    assert pool.sup.exit_code == 1
    assert pool.sup.finished


def test_a_failed_fork_leaves_its_slot_empty_and_is_retried_after_a_backoff() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.workforce.failing_forks = 2

    pool.start()
    pool.advance(0)
    pool.advance(0.1)
    after_first = (pool.workforce.told("spawn"), pool.sup.slots[0].state)
    for _ in range(3):
        pool.advance(10)
    pool.sup.child_ready(0, pool.now)

    assert after_first == ([0], SlotState.EMPTY)
    assert pool.workforce.told("spawn") == [0, 0, 0]
    assert pool.running(0) == job_id
    assert pool.sup.exit_code is None


def test_no_job_is_claimed_for_a_slot_whose_fork_failed() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    pool.enqueue(2)
    pool.workforce.failing_forks = 1

    pool.start()
    pool.advance(0)

    assert [slot for slot, _ in pool.workforce.tasks] == [1]
    assert pool.queue.stats("default").ready == 1


def test_a_pool_whose_other_children_are_idle_blocks_in_claim_while_a_fork_is_retried() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=timedelta(seconds=1)))
    pool.workforce.failing_forks = 1
    pool.start()
    pool.advance(0)  # slot 0 empty, its retry scheduled 0.5 s from now

    pool.sup.fill(pool.now)

    assert pool.sup.slots[0].state is SlotState.EMPTY
    assert pool.queue.waits[-1] == timedelta(seconds=0.5)  # blocks, but not past the retry


def test_forks_that_keep_failing_stop_the_pool_with_exit_code_1() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.workforce.failing_forks = 100

    pool.start()
    for _ in range(10):
        pool.advance(10)

    assert len(pool.workforce.told("spawn")) == MAX_SPAWN_FAILURES
    assert pool.sup.exit_code == 1
    assert pool.sup.finished


def test_a_write_the_queue_cannot_take_is_retried_and_the_lease_kept() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.down = True

    pool.reply(0, value=1)
    pool.queue.down = False
    pool.advance(1)

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED


def _reply_with_rss(rss: int) -> Reply:
    return Reply(True, None, 0.01, rss)
