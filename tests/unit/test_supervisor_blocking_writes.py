"""The supervisor's leases while its writes block: with ``REDIS_WAIT_REPLICAS`` and a lagging
replica every completion or failure waits out the ``WAIT`` timeout (a sixth of the lease)
before it is refused, while renewals answer at once. A renewal due meanwhile must go out
between those writes, not after all of them (fake children, a lagging memory queue, a manual
clock: a blocked write moves the clock).
"""

from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import UNCONFIRMED
from foundry.domain import ErrorInfo, JobState
from foundry.ports import ClaimRequest
from tests.pool_support import FAST, WAIT_S, Harness, LaggingQueue

#: The lease's thirds: renewals every 10 s, fencing 5 s before the local deadline.
RENEW_EVERY_S = 10.0


def lagging_pool(concurrency: int) -> tuple[Harness, LaggingQueue, list[str]]:
    """A pool whose children each run one job, claimed at the pool's start."""
    config = PoolConfig(concurrency=concurrency, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=LaggingQueue)
    jobs = pool.enqueue(concurrency)
    pool.start()
    assert isinstance(pool.queue, LaggingQueue)
    return pool, pool.queue, jobs


def failure(pool: Harness, slot: int) -> None:
    """``slot``'s child answers that its job failed (the failure is written at once)."""
    error = ErrorInfo.from_exception(RuntimeError("boom"))
    pool.sup.child_replied(slot, pool.answer(slot, ok=False, value=error), pool.now)


def test_a_renewal_due_during_an_outbox_retry_goes_out_before_the_claim_carrying_completions() -> (
    None
):
    pool, queue, _ = lagging_pool(3)
    claimed_at = pool.now
    pool.clock.advance(4)
    queue.lagging = True
    failure(pool, 0)  # refused after WAIT_S: it waits in the outbox
    pool.sup.child_replied(1, pool.answer(1), pool.now)  # batched for the next claim
    turn_at = pool.now
    assert turn_at < claimed_at + RENEW_EVERY_S

    # One turn of the loop: tick (the outbox retry blocks), then a claim with the completion.
    pool.sup.tick(turn_at)
    pool.sup.fill(pool.now)

    assert queue.blocked_at == [claimed_at + 4, turn_at, turn_at + WAIT_S]
    assert queue.renewed_at == [turn_at + WAIT_S]  # due at claimed_at + 10, one write late


def test_a_renewal_due_while_failures_are_written_goes_out_between_the_writes() -> None:
    pool, queue, _ = lagging_pool(5)
    claimed_at = pool.now
    pool.clock.advance(9)
    queue.lagging = True

    for slot in range(4):  # one turn reads four failures; each is written as it is read
        failure(pool, slot)

    writes = [claimed_at + 9 + WAIT_S * n for n in range(4)]
    assert queue.blocked_at == writes
    assert queue.renewed_at == [writes[1], writes[3]]  # each before the write after it fell due


def test_leases_held_through_a_turn_of_refused_writes_are_not_fenced() -> None:
    pool, queue, jobs = lagging_pool(5)
    pool.clock.advance(9)
    queue.lagging = True
    for slot in range(4):
        failure(pool, slot)  # 20 s of blocked writes: past the fencing point of the claim

    pool.advance(0)  # the loop's next turn
    queue.lagging = False
    pool.reply(4, value="done")
    pool.advance(1)

    assert pool.workforce.told("kill") == []
    record = queue.get(jobs[4])
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 1)


def test_a_job_handed_out_after_a_blocked_write_gets_its_whole_time_limit() -> None:
    pool, queue, _ = lagging_pool(2)
    queue.lagging = True
    failure(pool, 0)  # refused: it waits in the outbox, and child 0 is idle
    pool.enqueue(1)
    turn_at = pool.now

    # One turn of the loop, on the time read as it began: the outbox retry blocks, then a
    # claim (which does not wait for the replicas) brings a job for the idle child.
    pool.sup.tick(turn_at)
    pool.sup.fill(turn_at)

    running = pool.sup.slots[0].job
    assert running is not None
    assert running.started == turn_at + WAIT_S == pool.now
    assert running.hard_at == pool.now + running.lease.job.timeout.total_seconds()


def test_a_failure_whose_lease_the_renewal_before_its_write_finds_lost_is_not_written() -> None:
    pool, queue, jobs = lagging_pool(2)
    pool.clock.advance(9)
    queue.lagging = True
    failure(pool, 0)  # blocks past the renewal's time
    running = pool.sup.slots[1].job
    assert running is not None
    queue.release(running.lease)  # the queue no longer holds it for this pool

    failure(pool, 1)

    assert len(queue.blocked_at) == 1  # the first failure only
    second = [outcome.kind for job, outcome in pool.events.finished if job == jobs[1]]
    assert second == [OutcomeKind.ABANDONED]
    record = queue.get(jobs[1])
    assert record is not None
    assert (record.state, record.errors) == (JobState.READY, ())


def test_a_refused_failure_of_a_job_claimed_again_is_never_written_under_its_new_lease() -> None:
    pool, queue, jobs = lagging_pool(1)
    queue.lagging = True
    failure(pool, 0)  # written, refused: it waits in the outbox; the job is soon ready again
    pool.sup.fill(pool.now)  # this pool claims it again: attempt 2 runs under a new lease
    queue.lagging = False

    pool.advance(1)  # the outbox retry: the first attempt's failure, under the first lease
    pool.reply(0, value="done")
    pool.advance(1)

    record = queue.get(jobs[0])
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 2)
    assert [error.attempt for error in record.errors] == [1]


def outcomes(pool: Harness, job_id: str) -> list[OutcomeKind]:
    """How the pool reported ``job_id``'s attempts ended, in order."""
    return [outcome.kind for job, outcome in pool.events.finished if job == job_id]


def test_a_refused_failure_the_queue_applied_is_reported_retried_once_a_re_send_is_taken() -> None:
    pool, queue, jobs = lagging_pool(1)
    queue.lagging = True
    failure(pool, 0)  # applied (the job waits for its retry), refused: it waits in the outbox
    pool.advance(5)  # the renewal finds the lease gone; the re-send is refused again
    reported_while_lagging = outcomes(pool, jobs[0])
    queue.lagging = False

    pool.advance(1)  # the re-send is taken: the queue holds this failure

    assert queue.renewed_at == [queue.blocked_at[0] + WAIT_S + 5]
    assert reported_while_lagging == []
    assert outcomes(pool, jobs[0]) == [OutcomeKind.RETRIED]
    counters = pool.sup.settler.counters
    assert (counters.processed, counters.retried) == (1, 1)


def test_a_refused_completion_the_queue_applied_is_reported_completed() -> None:
    pool, queue, jobs = lagging_pool(2)
    queue.lagging = True
    pool.reply(0, value="done")  # written with the next claim: applied, refused
    queue.lagging = False

    pool.advance(10)  # the renewal finds its lease gone, before the re-send from the outbox

    record = queue.get(jobs[0])
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert outcomes(pool, jobs[0]) == [OutcomeKind.COMPLETED]
    assert outcomes(pool, jobs[1]) == []  # still running, its lease renewed
    assert pool.sup.settler.counters.processed == 1


def test_a_re_send_refused_as_stale_after_its_lease_was_lost_claims_no_known_outcome() -> None:
    pool, queue, jobs = lagging_pool(1)
    queue.lagging = True
    failure(pool, 0)  # applied, refused; the retry's delay (under a second) is over then
    queue.lagging = False
    (other,) = queue.claim(ClaimRequest(["default"], lease=pool.config.lease, limit=1))
    queue.complete(other)  # another worker ran the job again meanwhile

    pool.advance(5)  # the renewal finds the lease gone; the re-send is refused as stale

    (outcome,) = [outcome for job, outcome in pool.events.finished if job == jobs[0]]
    assert outcome.kind is OutcomeKind.ABANDONED
    assert outcome.reason == UNCONFIRMED
    assert pool.sup.settler.counters.processed == 0


def test_a_renewal_due_before_a_schedule_firing_goes_out_before_it() -> None:
    pool, queue, _ = lagging_pool(2)
    claimed_at = pool.now
    pool.clock.advance(9)
    queue.lagging = True
    failure(pool, 0)  # no renewal due before it; it blocks past the renewal's time
    fired_at: list[float] = []

    def fire(now: float) -> None:
        """A scheduler's firing over three Cluster masters, each one's WAIT nearly run out."""
        fired_at.append(now)
        pool.clock.advance(3 * WAIT_S)

    pool.sup.run_timers([fire])  # the loop runs its timers after the failures it read
    pool.advance(0)

    assert queue.renewed_at[:1] == fired_at == [claimed_at + 9 + WAIT_S]
    assert pool.workforce.told("kill") == []  # else fenced at claimed_at + 25
