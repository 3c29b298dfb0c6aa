"""The supervisor's claiming, driven by hand: who gets a job, how many are claimed ahead,
and when an idle pool blocks in claim (fake children, a memory queue, a manual clock).
"""

from datetime import timedelta

import attrs

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import CARRY_MAX_S, FLUSH_AFTER_S
from foundry.domain import JobState
from foundry.ports import ClaimRequest, Lease
from tests.pool_support import (
    FAST,
    REPLY_TIMEOUT_S,
    BatchingQueue,
    Harness,
    LaggingQueue,
    StalledClaims,
)

WINDOW_20_MS = timedelta(milliseconds=20)


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

    assert len(pool.began) == 1
    assert len(pool.held()) == 2
    assert pool.queue.stats("default").active == 3


def test_prefetch_is_topped_up_only_once_half_of_it_is_spent() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=4, idle_wait=FAST))
    pool.enqueue(10)
    pool.start()  # one running, four held
    pool.reply(0)  # three held: more than half, no claim
    held_after_one = len(pool.held())

    pool.reply(0)  # two held: half spent, topped up to four

    assert (held_after_one, len(pool.held())) == (3, 4)


def _attempts_after_a_crash(pool: Harness, ids: list[str]) -> dict[str, int]:
    """Each job's attempts once every lease the pool held has lapsed (as when its worker is
    killed) and the queue has recovered them."""
    pool.clock.advance(pool.config.lease + timedelta(seconds=1))
    pool.queue.reap()
    records = {job_id: pool.queue.get(job_id) for job_id in ids}
    return {job_id: record.attempts for job_id, record in records.items() if record is not None}


def test_by_default_short_jobs_are_held_ahead_and_a_dead_worker_spends_none_of_their_attempts() -> (
    None
):
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    ids = pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(1, runtime=0.005)  # 2 children finish 8 jobs of 5 ms in 20 ms

    held = [lease.job_id for lease in pool.held()]
    attempts = _attempts_after_a_crash(pool, ids)

    assert len(held) == 8
    assert [attempts[job_id] for job_id in held] == [0] * 8
    assert sum(attempts.values()) == 4  # two completed, two claimed for idle children


def test_a_held_job_given_to_a_child_reports_its_start_with_the_next_claim() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    ids = pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 2 children finish 8 jobs of 5 ms in 20 ms: 8 held
    pool.reply(1, runtime=0.005)  # child 1 takes a held job, and keeps running it
    reported = pool.running(1)
    while len(pool.held()) > 4:  # no claim until half the buffer is spent
        pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # this claim reports child 1's start, and child 0's
    pool.reply(0, runtime=0.005)  # child 0 takes the next held job; 7 held, no claim
    unreported = pool.running(0)

    attempts = _attempts_after_a_crash(pool, ids)

    assert attempts[reported] == 1
    assert attempts[unreported] == 0  # started, but the worker died before reporting it


CONFIG_1 = PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None)


def _after_a_crash_with_held_jobs() -> tuple[Harness, list[str], Lease]:
    """A pool that took over from one that died holding jobs ahead: it holds one of them
    again (the first of its buffer), whose lease lapsed unstarted once."""
    first = Harness(CONFIG_1)
    ids = first.enqueue(100)
    first.start()
    first.reply(0, runtime=0.005)
    first.reply(0, runtime=0.005)  # 4 held; then the worker dies: they lapse unstarted
    held = [lease.job_id for lease in first.held()]
    assert _attempts_after_a_crash(first, ids)[held[0]] == 0
    pool = Harness(CONFIG_1, after=first)
    pool.start()  # the jobs held before come first
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held again
    suspect = pool.held()[0]
    assert (suspect.job_id in held, suspect.lapses) == (True, 1)
    return pool, ids, suspect


def test_a_held_job_whose_lease_lapsed_unstarted_has_its_start_reported_before_it_runs() -> None:
    pool, ids, suspect = _after_a_crash_with_held_jobs()

    pool.reply(0, runtime=0.005)  # it starts: its start is reported before it runs
    assert pool.running(0) == suspect.job_id

    assert _attempts_after_a_crash(pool, ids)[suspect.job_id] == 1


def test_a_job_that_lapsed_unstarted_is_given_back_if_its_start_cannot_be_reported() -> None:
    pool, _, suspect = _after_a_crash_with_held_jobs()
    pool.queue.down = True

    pool.reply(0, runtime=0.005)

    assert pool.sup.slots[0].job is None  # nor the next: the queue does not answer
    assert suspect.job_id not in [lease.job_id for lease in pool.held()]
    record = pool.queue.get(suspect.job_id)  # given back (this queue takes releases)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.READY, 0)


def test_held_jobs_wait_while_the_queue_does_not_answer_and_start_once_it_does() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held
    pool.queue.down = True
    pool.advance(pool.config.lease.total_seconds() / 3 + 0.1)  # the renew fails

    pool.reply(0, runtime=0.005)

    assert pool.sup.slots[0].job is None  # a start that could not be reported: none
    assert len(pool.held()) == 4
    pool.queue.down = False
    pool.advance(1.0)  # the next renew goes through
    assert pool.sup.slots[0].job is not None
    assert len(pool.held()) == 3


def test_after_a_failed_call_held_jobs_start_only_once_a_renew_confirmed_their_leases() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held
    pool.queue.down = True
    pool.advance(pool.config.lease.total_seconds() / 3 + 0.1)  # the renew fails
    pool.reply(0, runtime=0.005)
    lost, kept = pool.held()[0], pool.held()[1]
    pool.queue.down = False
    pool.queue.release(lost)  # a failover lost its claim: the new master had it ready
    pool.queue.claim(ClaimRequest(["default"], lease=pool.config.lease))  # another worker's

    pool.clock.advance(timedelta(milliseconds=100))  # past the busy-poll pause
    pool.sup.fill(pool.now)  # a claim goes through first, before any renew

    assert pool.running(0) == kept.job_id
    assert lost.job_id not in [lease.job_id for lease in pool.held()]
    assert lost.job_id not in [job_id for job_id, _ in pool.events.started]


def test_a_claim_that_hands_back_a_job_held_under_a_lost_lease_replaces_that_lease() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held
    pool.queue.down = True
    pool.advance(pool.config.lease.total_seconds() / 3 + 0.1)  # the renew fails
    pool.reply(0, runtime=0.005)
    lost = pool.held()[0]
    pool.queue.down = False
    pool.queue.release(lost)  # a failover lost its claim: the new master has it ready

    pool.clock.advance(timedelta(milliseconds=100))
    pool.sup.fill(pool.now)  # and this pool's claim takes it again

    held = [lease for lease in pool.held() if lease.job_id == lost.job_id]
    running = [pool.running(0)] if pool.sup.slots[0].job else []
    assert len(held) + running.count(lost.job_id) == 1
    assert all(lease.token != lost.token for lease in held)


def _held_past_their_fencing_point() -> tuple[Harness, Lease]:
    """A pool of one child holding 4 jobs ahead, whose leases are within the fence margin of
    their local deadline (no tick fenced them yet); the lease the child gets next."""
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held
    lease_s = pool.config.lease.total_seconds()
    pool.clock.advance(timedelta(seconds=lease_s * 5 / 6))
    return pool, pool.held()[0]


def test_a_held_job_whose_lease_is_about_to_lapse_runs_once_a_renewal_kept_its_lease() -> None:
    pool, lapsing = _held_past_their_fencing_point()

    pool.reply(0, runtime=0.005)

    assert pool.running(0) == lapsing.job_id
    assert pool.events.renewals[0] == (5, 0)  # 4 held, 1 done (its completion batched)
    record = pool.queue.get(lapsing.job_id)
    assert record is not None
    assert record.lease_deadline == pool.clock.now() + pool.config.lease
    assert pool.workforce.fences[-1] == (0, pool.now + 30 - 2.5)  # the renewal's deadline


def test_held_jobs_a_tick_finds_at_their_fencing_point_stay_held_once_a_renewal_kept_them() -> None:
    pool, _ = _held_past_their_fencing_point()
    held = [lease.job_id for lease in pool.held()]

    pool.advance(0)

    assert pool.workforce.told("kill") == [0]  # the running job's lease: fenced, no renewal
    assert [lease.job_id for lease in pool.held()] == held
    for job_id in held:
        record = pool.queue.get(job_id)
        assert record is not None
        assert record.lease_deadline == pool.clock.now() + pool.config.lease


def test_a_held_job_whose_lease_the_renewal_before_its_start_finds_lost_never_runs() -> None:
    pool, lapsing = _held_past_their_fencing_point()
    pool.queue.release(lapsing)  # the queue no longer holds it for this pool

    pool.reply(0, runtime=0.005)

    assert lapsing.token not in [lease.token for lease in pool.began]
    assert lapsing.job_id in [job for job, _ in pool.events.finished]


def test_a_held_job_whose_lease_is_about_to_lapse_never_runs_if_the_renewal_fails() -> None:
    pool, lapsing = _held_past_their_fencing_point()
    pool.queue.down = True

    pool.reply(0, runtime=0.005)

    assert pool.sup.slots[0].job is None
    assert lapsing.job_id not in [lease.job_id for lease in pool.held()]
    assert lapsing.token not in [lease.token for lease in pool.began]


def test_a_claim_whose_reply_came_after_its_fencing_point_runs_its_job_once_renewed() -> None:
    config = PoolConfig(concurrency=1, idle_wait=FAST, prefetch_window=timedelta(0))
    pool = Harness(attrs.evolve(config, cancel_check=None), queue=LaggingQueue)
    _, second = pool.enqueue(2)
    pool.start()
    queue = pool.queue
    assert isinstance(queue, LaggingQueue)
    queue.lagging = True
    pool.reply(0, value="done")  # with the claim for the idle child: applied, refused
    queue.lagging, queue.down = False, True
    while pool.now < queue.blocked_at[0] + 26:  # 5/6 of the lease after the claim was sent
        pool.advance(1)
    queue.down = False

    pool.advance(1)  # the claim is sent again: the queue answers with its lease, 27 s old

    assert pool.running(0) == second
    record = queue.get(second)
    assert record is not None
    assert (record.attempts, record.lease_deadline) == (1, pool.clock.now() + config.lease)


def test_a_renew_reports_the_start_of_a_held_job() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    ids = pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 1 child finishes 4 jobs of 5 ms in 20 ms: 4 held
    pool.reply(0, runtime=0.005)  # a held job starts; no claim reports it
    started = pool.running(0)
    assert len(pool.held()) == 3

    pool.advance(pool.config.lease.total_seconds() / 3 + 0.1)  # the renew is due

    assert _attempts_after_a_crash(pool, ids)[started] == 1


def test_a_20_ms_window_holds_short_jobs_as_many_as_the_children_finish_in_it() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=WINDOW_20_MS))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.005)
    pool.reply(1, runtime=0.005)  # 2 children finish 8 jobs of 5 ms in 20 ms

    assert len(pool.held()) == 8
    assert pool.queue.stats("default").active == 10


def test_the_jobs_held_are_those_the_children_finish_in_the_window_to_the_nearest_one() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=WINDOW_20_MS))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.0101)
    pool.reply(1, runtime=0.0101)  # 2 children finish 3.96 jobs of 10.1 ms in 20 ms

    assert len(pool.held()) == 4


def test_jobs_longer_than_the_window_per_child_are_claimed_only_for_idle_ones() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=WINDOW_20_MS))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.05)
    pool.reply(1, runtime=0.05)

    assert len(pool.held()) == 0
    assert pool.queue.stats("default").active == 2


def test_without_a_window_the_parent_claims_only_for_idle_children() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=timedelta(0)))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.000_1)
    pool.reply(1, runtime=0.000_1)

    assert len(pool.held()) == 0
    assert pool.queue.stats("default").active == 2


def test_short_jobs_raise_an_adaptive_prefetch_so_claims_come_in_batches() -> None:
    window = timedelta(milliseconds=5)
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, prefetch_window=window))
    pool.enqueue(100)
    pool.start()

    pool.reply(0, runtime=0.000_1)  # its completion rides with this claim: counted after it
    pool.reply(1, runtime=0.000_1)  # 2 children finish 100 jobs of 0.1 ms in 5 ms: capped at 64

    assert len(pool.held()) == 64  # claimed 65: one for the idle child, 64 held
    assert pool.queue.stats("default").active == 66


def test_long_jobs_keep_the_configured_prefetch() -> None:
    pool = Harness(PoolConfig(concurrency=2, prefetch=1, idle_wait=FAST))
    pool.enqueue(10)
    pool.start()

    pool.reply(0, runtime=2.0)
    pool.reply(1, runtime=2.0)

    assert len(pool.held()) == 1


def test_a_pool_that_turns_idle_after_a_busy_poll_claims_a_new_job_without_waiting() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST))
    pool.enqueue(1)
    pool.start()  # one child busy, the other finds the queue empty: a busy poll
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    (late,) = pool.enqueue(1)

    pool.sup.quiet(pool.now)  # its completion is written, then the idle pool claims

    assert pool.running(0) == late


def test_an_idle_pool_with_a_raised_prefetch_hands_a_new_job_to_an_idle_child_in_one_claim() -> (
    None
):
    """The default window raises the prefetch once short jobs ran; the pool is still idle
    between jobs, so its claim blocks on the wake list, not sitting out a busy-poll pause,
    and the job goes to an idle child, not to the buffer."""
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, cancel_check=None))
    pool.enqueue(2)
    pool.start()
    pool.reply(0, runtime=0.000_1)  # the other child busy: a busy poll, the next 50 ms away
    pool.reply(1, runtime=0.000_1)
    pool.sup.quiet(pool.now)  # the completions written, the idle pool waits in claim
    pool.clock.advance(FAST)  # that claim waited its idle wait and found nothing
    sent = len(pool.queue.claims)
    (job,) = pool.enqueue(1)

    pool.sup.fill(pool.now)  # the loop's next turn, well within the busy-poll pause

    (claim,) = pool.queue.claims[sent:]
    assert (claim.wait, claim.limit, claim.ahead) == (FAST, 66, 64)  # blocking; prefetch 64
    assert pool.running(0) == job
    assert pool.held() == []


def test_a_pool_its_batched_completions_left_idle_claims_at_once_when_quiet() -> None:
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST), queue=BatchingQueue)
    pool.enqueue(1)
    pool.start()  # one child busy, the other finds the queue empty: a busy poll
    pool.reply(0)  # its completion waits for the next flush
    (late,) = pool.enqueue(1)

    pool.sup.quiet(pool.now)

    assert pool.running(0) == late


def test_a_claim_that_failed_after_blocking_is_sent_again_an_idle_wait_after_it_returned() -> None:
    config = PoolConfig(concurrency=1, idle_wait=timedelta(seconds=1), cancel_check=None)
    pool = Harness(config, queue=StalledClaims)
    queue = pool.queue
    assert isinstance(queue, StalledClaims)
    pool.start()  # the idle pool claims: nothing comes
    started_at = pool.now
    queue.down = True

    pool.advance(1)  # the next claim blocks 3 s, then fails
    pool.advance(0)  # the loop's next turns, at once
    pool.advance(0.9)
    early = list(queue.claimed_at)
    pool.advance(0.1)

    failed_at = started_at + 1 + REPLY_TIMEOUT_S
    assert early == [started_at, started_at + 1]
    assert queue.claimed_at == [started_at, started_at + 1, failed_at + 1]


def test_held_jobs_wait_once_a_completion_finds_the_queue_unreachable() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    pool.enqueue(100)
    pool.start()
    pool.reply(0, runtime=0.005)
    pool.reply(0, runtime=0.005)  # 4 held
    pool.advance(2 * FLUSH_AFTER_S)  # the first reap; no renew or reap due for seconds now
    pool.queue.down = True

    pool.reply(0, runtime=0.005)  # a held job starts
    pool.clock.advance(timedelta(seconds=CARRY_MAX_S))  # past any wait for a claim
    pool.sup.quiet(pool.now)  # a quiet moment: the completion's write fails
    pool.reply(0, runtime=0.005)

    assert pool.sup.slots[0].job is None  # a start that could not be reported: none
    assert len(pool.held()) == 3
    pool.queue.down = False
    pool.advance(1.0)  # the outbox's retry and a renew go through
    assert pool.sup.slots[0].job is not None
