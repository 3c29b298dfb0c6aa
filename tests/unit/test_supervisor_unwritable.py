"""The supervisor's writes that fail for a reason of one job's own (an unexpected error, no
outage), driven by hand: that job ends (dead with the reason, or abandoned to the queue's
recovery), the pool lives on (fake children, a memory queue composed to refuse, a manual
clock)."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import OUTBOX_RETRY_S, REFUSED_FOR_S, UNWRITABLE
from foundry.domain import Decision, ErrorInfo, JobState, QueueBroken, RetryPolicy
from foundry.ports import ClaimRequest, Lease
from tests.log_support import foundry_messages
from tests.pool_support import FAST, FlakyQueue, Harness


class Refusing(FlakyQueue):
    """A memory queue whose next ``refusals`` failures (or releases) raise an error of no
    outage, as an adapter's bug or a job's data it cannot write would."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.refusals = 0

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        self._refuse()
        return super().fail(lease, error, decision)

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        self._refuse()
        super().release(lease, delay)

    def _refuse(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError("cannot write this one")


def _refusing(refusals: int, **options: object) -> Harness:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, **options), queue=Refusing)  # type: ignore[arg-type]
    assert isinstance(pool.queue, Refusing)
    pool.queue.refusals = refusals
    return pool


def test_a_failure_the_queue_cannot_write_ends_the_job_dead_naming_both_errors() -> None:
    pool = _refusing(1)
    failing, after = pool.enqueue(2, retry=RetryPolicy(max_attempts=3))
    pool.start()

    pool.fail(0, ValueError("the handler's own"))
    pool.reply(0, value=3)
    pool.advance(1)

    record = pool.queue.get(failing)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason == f"{UNWRITABLE}: RuntimeError: cannot write this one"
    (error,) = record.errors
    assert error.type == "RuntimeError"
    assert "the attempt had failed with ValueError: the handler's own" in error.message
    assert pool.queue.get(after).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert pool.sup.exit_code is None


def test_a_failure_that_cannot_be_written_at_all_is_abandoned_to_the_queues_recovery() -> None:
    pool = _refusing(2)
    failing, after = pool.enqueue(2, retry=RetryPolicy(max_attempts=3))
    pool.start()

    pool.fail(0, ValueError("the handler's own"))
    pool.reply(0, value=3)
    pool.advance(1)

    record = pool.queue.get(failing)
    assert record is not None
    assert record.state is JobState.ACTIVE  # until its lease lapses (Q5)
    kinds = [(job_id, outcome.kind) for job_id, outcome in pool.events.finished]
    assert kinds == [(failing, OutcomeKind.ABANDONED), (after, OutcomeKind.COMPLETED)]
    assert pool.events.finished[0][1].reason == f"{UNWRITABLE}: RuntimeError: cannot write this one"
    assert failing not in pool.sup._book
    assert pool.sup.exit_code is None


def test_a_release_the_queue_cannot_write_at_a_stop_is_abandoned_and_the_stop_ends() -> None:
    pool = _refusing(1, grace=timedelta(seconds=1))
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(0)
    pool.advance(1)

    [(ended, outcome)] = pool.events.finished
    assert (ended, outcome.kind) == (job_id, OutcomeKind.ABANDONED)
    assert pool.sup.finished
    assert pool.sup.exit_code is None


class Broken(FlakyQueue):
    """A memory queue that refuses every completion as a broken queue does (Redis answering
    an error reply: a key of the wrong type), and failures too while ``failures_refused``."""

    failures_refused = False

    def complete(self, lease: Lease, result: Any = None) -> None:
        raise QueueBroken(lease.queue, "WRONGTYPE (test)")

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool]:
        raise QueueBroken(leases[0].queue, "WRONGTYPE (test)")

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        refused = [QueueBroken(lease.queue, "WRONGTYPE (test)") for lease in leases]
        return [*refused], self.claim(request)

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        if self.failures_refused:
            raise QueueBroken(lease.queue, "WRONGTYPE (test)")
        return super().fail(lease, error, decision)


def _refused_for(pool: Harness, seconds: float) -> None:
    for _ in range(round(seconds / OUTBOX_RETRY_S)):
        pool.advance(OUTBOX_RETRY_S)


def test_a_completion_the_queue_refuses_for_good_is_retried_a_while_then_the_job_dies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=Broken)
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.reply(0, value=3)
    pool.advance(0)
    _refused_for(pool, REFUSED_FOR_S / 2)
    waiting = pool.queue.get(job_id)
    _refused_for(pool, REFUSED_FOR_S / 2 + OUTBOX_RETRY_S)

    assert waiting is not None
    assert waiting.state is JobState.ACTIVE  # retried meanwhile
    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason is not None
    assert record.reason.startswith(f"{UNWRITABLE}: QueueBroken: queue 'default' is broken")
    assert not pool.sup.settler.outbox
    assert any("the queue refused writing" in message for message in foundry_messages(caplog))
    assert pool.sup.exit_code is None


def test_a_job_whose_completion_and_failure_the_queue_refuses_is_abandoned_in_the_end() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=Broken)
    assert isinstance(pool.queue, Broken)
    pool.queue.failures_refused = True
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.reply(0, value=3)
    pool.advance(0)
    _refused_for(pool, REFUSED_FOR_S + OUTBOX_RETRY_S)

    [(ended, outcome)] = pool.events.finished
    assert (ended, outcome.kind) == (job_id, OutcomeKind.ABANDONED)
    assert not pool.sup.settler.outbox
    assert job_id not in pool.sup._book
