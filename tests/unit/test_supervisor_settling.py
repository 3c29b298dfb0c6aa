"""The supervisor's settling, driven by hand: completions batched with the next claim, and
writes the queue could not take (fake children, a memory queue, a manual clock).
"""

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.outcome import OutcomeKind
from foundry.application.pool.claims import BUSY_POLL_S
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import CARRY_MAX_S, FLUSH_AFTER_S, OUTBOX_RETRY_S
from foundry.domain import JobState, QueueBroken
from foundry.ports import ClaimRequest, Lease
from tests.log_support import foundry_messages
from tests.pool_support import FAST, BatchingQueue, CombiningQueue, Harness


def test_replies_read_in_one_turn_of_the_loop_are_completed_in_one_batch() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=BatchingQueue)
    first, second = pool.enqueue(2)
    pool.start()
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    pool.sup.child_replied(1, pool.answer(1), pool.now)
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
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    pool.sup.child_replied(1, pool.answer(1), pool.now)

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


def test_a_resent_claim_goes_alone_after_the_completions_that_came_in_meanwhile() -> None:
    # A combined call refused for its completions (a WAIT the replicas did not answer) was
    # applied: the claim is re-sent to get its leases back, and must not be refused again.
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=CombiningQueue)
    first, second, *_ = pool.enqueue(4)
    pool.start()
    pool.queue.down = True
    pool.reply(0)  # its completion and a claim: refused
    pool.queue.down = False
    pool.sup.child_replied(1, pool.answer(1), pool.now)

    pool.advance(1)

    assert isinstance(pool.queue, CombiningQueue)
    assert pool.queue.tokens[-2] == pool.queue.tokens[-1]  # the refused claim's token, again
    assert pool.queue.combined == 0
    assert [pool.queue.get(job_id).state for job_id in (first, second)] == [JobState.COMPLETED] * 2  # type: ignore[union-attr]


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


class CountingQueue(BatchingQueue):
    """A batching flaky queue that counts the single completions it was asked to write."""

    completes: int = 0

    def complete(self, lease: Lease, result: Any = None) -> None:
        self.completes += 1
        super().complete(lease, result)


def test_an_outbox_retry_stops_at_the_first_write_the_queue_still_cannot_take() -> None:
    # Each refused write may block (a WAIT for replicas runs out its timeout): retrying all
    # of them in one turn would hold back the renewals until the leases lapse.
    pool = Harness(PoolConfig(concurrency=3, idle_wait=FAST), queue=CountingQueue)
    jobs = pool.enqueue(3)
    pool.start()
    for slot in range(3):
        pool.sup.child_replied(slot, pool.answer(slot), pool.now)
    pool.queue.down = True
    pool.sup.settler.flush()  # three completions wait in the outbox
    assert isinstance(pool.queue, CountingQueue)

    pool.advance(OUTBOX_RETRY_S)
    tried_while_down = pool.queue.completes
    pool.queue.down = False
    pool.advance(OUTBOX_RETRY_S)

    assert tried_while_down == 1
    assert [pool.queue.get(job_id).state for job_id in jobs] == [JobState.COMPLETED] * 3  # type: ignore[union-attr]
    assert pool.sup.settler.outbox == []


def test_a_result_completes_the_job_and_the_child_gets_the_next_one() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST))
    first, second = pool.enqueue(2)
    pool.start()

    pool.reply(0, value={"answer": 42})

    record = pool.queue.get(first)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, {"answer": 42})
    assert pool.running(0) == second


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


def _alternating(pool: Harness, turns: int, between: float) -> list[int]:
    """Two busy children answer in turn, ``between`` seconds apart (a 10 ms job each); the
    completions still waiting before each answer."""
    waiting = []
    for _ in range(turns):
        for slot in (0, 1):
            pool.reply(slot, runtime=0.01)
            pool.sup.quiet(pool.now)
            pool.clock.advance(timedelta(seconds=between))
            pool.sup.tick(pool.now)
            pool.sup.quiet(pool.now)
            waiting.append(len(pool.sup.settler.batched))
    return waiting


def test_completions_wait_for_the_claim_the_replies_bring_soon_which_carries_them() -> None:
    pool = Harness(
        PoolConfig(concurrency=2, idle_wait=FAST, cancel_check=None), queue=CombiningQueue
    )
    pool.enqueue(40)
    pool.start()

    waiting = _alternating(pool, 8, between=0.004)  # past FLUSH_AFTER_S, within a job's time

    assert isinstance(pool.queue, CombiningQueue)
    # 16 jobs, 5 round trips: once the prefetch rose to 4, a claim every fourth reply
    # carries the completions of the three before it and its own.
    assert (pool.queue.batches, pool.queue.combined) == (0, 5)
    assert [claim.limit for claim in pool.queue.claims[3:]] == [4] * 5
    assert waiting[6:] == [0, 1, 2, 3] * 2 + [0, 1]
    assert len(pool.sup.settler.batched) == 1  # the last, waiting for the next claim
    pool.clock.advance(timedelta(seconds=CARRY_MAX_S))
    pool.sup.quiet(pool.now)
    assert (pool.queue.batches, pool.sup.settler.batched) == (1, [])  # no longer than that


def test_a_completion_no_claim_will_carry_soon_is_written_after_the_brief_wait() -> None:
    pool = Harness(
        PoolConfig(concurrency=2, idle_wait=FAST, cancel_check=None), queue=CombiningQueue
    )
    pool.enqueue(6)  # the queue runs dry: the busy pool polls it only every BUSY_POLL_S
    pool.start()

    waiting = _alternating(pool, 3, between=0.004)

    assert isinstance(pool.queue, CombiningQueue)
    assert (pool.queue.batches, pool.queue.combined) == (4, 2)
    assert waiting == [0] * 6  # each written after FLUSH_AFTER_S


def test_a_completion_that_leaves_every_child_idle_is_written_at_once() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=BatchingQueue)
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.sup.child_replied(0, pool.answer(0), pool.now)

    pool.sup.quiet(pool.now)

    assert pool.queue.get(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]


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


def test_a_write_retried_through_an_outage_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="foundry")
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.enqueue(1)
    pool.start()
    pool.queue.down = True

    pool.reply(0, value=1)
    for _ in range(4):
        pool.advance(OUTBOX_RETRY_S)  # each retry fails

    retries = [m for m in foundry_messages(caplog, logging.ERROR) if "will retry" in m]
    assert retries == ["queue unavailable, will retry 1 completions: the queue is down (test)"]


def test_a_result_the_queue_refuses_fails_its_attempt_and_the_rest_of_the_batch_completes() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=CombiningQueue)
    bad, good = pool.enqueue(2)
    pool.start()
    pool.sup.child_replied(0, pool.answer(0, value=1j), pool.now)
    pool.sup.child_replied(1, pool.answer(1, value={"n": 1}), pool.now)

    pool.sup.fill(pool.now)

    refused, completed = pool.queue.get(bad), pool.queue.get(good)
    assert refused is not None
    assert completed is not None
    assert refused.state is JobState.DEAD
    assert [error.type for error in refused.errors] == ["foundry.domain.errors.InvalidResult"]
    assert (completed.state, completed.result) == (JobState.COMPLETED, {"n": 1})
    kinds = {job_id: outcome.kind for job_id, outcome in pool.events.finished}
    assert kinds == {bad: OutcomeKind.DEAD, good: OutcomeKind.COMPLETED}


def test_a_poll_that_wrote_the_last_completion_leaves_the_idle_pool_claiming_at_once() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=CombiningQueue)
    pool.enqueue(1)
    pool.start()  # child 0 runs the job; child 1's claim found nothing: a busy poll is due later
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    pool.clock.advance(timedelta(seconds=BUSY_POLL_S))
    pool.sup.tick(pool.now)

    pool.sup.fill(pool.now)  # busy until written: the poll carries the completion, finds nothing

    assert isinstance(pool.queue, CombiningQueue)
    assert pool.queue.combined == 1
    assert pool.sup.next_wake(pool.now) <= pool.now  # idle now: no busy-poll pause to sit out


class LapsingQueue(CombiningQueue):
    """A combining queue whose leases of the jobs in ``lapse`` lapse just before a combined
    call writes their completions (as a Redis that was down longer than the lease)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.lapse: set[str] = set()

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        for lease in leases:
            if lease.job_id in self.lapse:
                self.release(lease)
        return super().complete_and_claim(leases, results, request)


def test_a_batched_completion_refused_as_stale_is_logged_like_one_written_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="foundry")
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=LapsingQueue)
    first, _ = pool.enqueue(2)
    pool.start()
    assert isinstance(pool.queue, LapsingQueue)
    pool.queue.lapse.add(first)

    pool.reply(0)  # written with the next claim: refused as stale, the claim made

    assert pool.queue.combined == 1
    (outcome, *_) = [outcome for job, outcome in pool.events.finished if job == first]
    assert outcome.kind is OutcomeKind.ABANDONED
    stale = [m for m in foundry_messages(caplog) if f"on job {first!r} is stale" in m]
    assert len(stale) == 1
