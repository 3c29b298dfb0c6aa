"""The supervisor's writes that fail for a reason of one job's own (an unexpected error, no
outage), driven by hand: that job ends (dead with the reason, or abandoned to the queue's
recovery), the pool lives on (fake children, a memory queue composed to refuse, a manual
clock)."""

from datetime import timedelta

from foundry.adapters.clock import ManualClock
from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import UNWRITABLE
from foundry.domain import Decision, ErrorInfo, JobState, RetryPolicy
from foundry.ports import Lease
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
