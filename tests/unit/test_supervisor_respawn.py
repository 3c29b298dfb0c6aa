"""The supervisor's children replaced, driven by hand: recycling, children that die before
they are ready, failed forks (fake children, a memory queue, a manual clock).
"""

from datetime import timedelta

import pytest

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.respawn import MAX_SPAWN_FAILURES
from foundry.application.pool.slots import SlotState
from foundry.domain import JobState
from tests.log_support import foundry_messages
from tests.pool_support import FAST, Harness


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
    assert pool.events.recycled == [(pool.sup.slots[0].pid, "max tasks")]


def test_a_child_over_the_memory_limit_is_recycled_and_its_job_still_completes() -> None:
    pool = Harness(PoolConfig(concurrency=1, max_memory_per_child_mb=100, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.child_replied(0, pool.answer(0, rss=200 << 20), pool.now)
    pool.sup.child_exited(0, 0, pool.now)
    pool.sup.quiet(pool.now)  # no child busy: the batched completion is written

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert pool.workforce.told("stop") == [0]
    assert pool.workforce.told("spawn") == [0, 0]
    assert [reason for _, reason in pool.events.recycled] == ["RSS 200 MiB"]


def test_children_that_keep_dying_before_ready_stop_the_pool_with_exit_code_1() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.sup.start()

    for _ in range(3):
        pool.sup.child_exited(0, 1, pool.now)
    pool.advance(0)

    assert pool.sup.exit_code == 1
    assert pool.sup.finished


def test_the_pool_says_once_that_its_children_keep_dying_before_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    pool.sup.start()

    for slot in (0, 1, 0, 1):  # the last one dies as the pool stops
        pool.sup.child_exited(slot, 1, pool.now)

    said = [message for message in foundry_messages(caplog) if "in a row died" in message]
    assert (pool.sup.exit_code, len(said)) == (1, 1)


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
    assert pool.queue.claims[-1].wait == timedelta(seconds=0.5)  # blocks, but not past the retry


def test_forks_that_keep_failing_stop_the_pool_with_exit_code_1() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.workforce.failing_forks = 100

    pool.start()
    for _ in range(10):
        pool.advance(10)

    assert len(pool.workforce.told("spawn")) == MAX_SPAWN_FAILURES
    assert pool.sup.exit_code == 1
    assert pool.sup.finished
