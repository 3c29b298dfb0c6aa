"""A busy child holding its next job queued, driven by hand: the job is sent while the child
runs the one before it, starts (and spends its attempt) only once the child has answered
about that one, and never starts once its lease is about to be fenced, withdrawn, or its
child is gone (fake children, a memory queue, a manual clock)."""

from datetime import timedelta

from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.starts import LOOK_EVERY_S
from foundry.application.pool.wire import Reply
from foundry.domain import JobCancelled, JobState, RetryPolicy
from tests.pool_support import FAST, Harness

#: One child, one job held ahead of it: the child holds it queued behind its running job.
ONE_AHEAD = PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST, cancel_check=None)


def _holding(config: PoolConfig = ONE_AHEAD, timeout_s: float = 60) -> tuple[Harness, str, str]:
    """A pool whose child runs one job and holds the next queued; their ids."""
    pool = Harness(config)
    pool.enqueue(2, retry=RetryPolicy(max_attempts=3), timeout=timedelta(seconds=timeout_s))
    pool.start()
    slot = pool.sup.slots[0]
    assert slot.job is not None
    assert slot.queued is not None
    return pool, slot.job.lease.job_id, slot.queued.lease.job_id


def _attempts(pool: Harness, job_id: str) -> int:
    record = pool.queue.get(job_id)
    assert record is not None
    return record.attempts


def test_a_busy_child_is_sent_its_next_job_which_starts_when_the_child_answers() -> None:
    pool, running, queued = _holding()

    assert [task[0] for _, task in pool.workforce.tasks] == [running, queued]
    assert [lease.job_id for lease in pool.began] == [running]
    assert pool.sup.buffer == type(pool.sup.buffer)()
    pool.reply(0)

    assert pool.running(0) == queued
    assert [job for job, _ in pool.events.started] == [running, queued]


def test_a_queued_jobs_attempt_is_spent_only_once_it_starts() -> None:
    pool, running, queued = _holding()
    pool.clock.advance(pool.config.lease + timedelta(seconds=1))  # the worker died
    pool.queue.reap()

    assert (_attempts(pool, running), _attempts(pool, queued)) == (1, 0)


def test_a_queued_jobs_hard_limit_counts_from_when_the_child_ended_the_job_before_it() -> None:
    pool, _, queued = _holding()
    slot = pool.sup.slots[0]
    assert slot.job is not None
    ended = pool.now + 40.0  # the child ran the first job 40 s past the queued one's send
    pool.clock.advance(timedelta(seconds=41))
    reply = Reply(True, None, 40.0, 0, slot.pid, slot.job.lease.token, ended)

    pool.sup.child_replied(0, reply, pool.now)

    promoted = slot.job
    assert promoted is not None
    assert promoted.lease.job_id == queued
    assert (promoted.started, promoted.hard_at) == (ended, ended + 60.0)


def test_the_child_may_start_a_queued_job_only_until_its_lease_would_be_fenced() -> None:
    pool, _, _ = _holding()
    claimed_at = pool.now
    assert pool.workforce.starts_by[0, 1] == claimed_at + 30 - 5  # the parent's fencing point

    pool.advance(10)  # the renewal moves it with the lease

    assert pool.workforce.starts_by[0, 1] == pool.now + 30 - 5
    assert pool.workforce.fences[-1] == (0, pool.now + 30 - 2.5)


def test_after_its_answer_a_childs_fence_follows_the_job_it_promoted() -> None:
    pool = Harness(ONE_AHEAD)
    pool.enqueue(1)
    pool.start()
    first_claim = pool.now
    pool.enqueue(1)
    pool.advance(5)  # claimed 5 s later: its lease ends 5 s after the running job's
    assert pool.sup.slots[0].queued is not None
    assert pool.workforce.fences[-1] == (0, first_claim + 30 - 2.5)  # the earlier of the two

    pool.reply(0)

    assert pool.sup.slots[0].queued is None  # nothing left to queue behind it
    assert pool.workforce.fences[-1] == (0, first_claim + 5 + 30 - 2.5)


def test_a_queued_job_the_child_skips_goes_back_to_the_buffer_unspent_and_runs_next() -> None:
    pool, running, queued = _holding()
    slot = pool.sup.slots[0]
    assert slot.job is not None
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    skipped = slot.job
    assert skipped is not None
    assert skipped.lease.job_id == queued

    pool.sup.tick(pool.now)  # the child has not started it: no start is reported
    assert [job for job, _ in pool.events.started] == [running]
    pool.sup.child_skipped(0, skipped.task, skipped.lease.token, pool.now)
    pool.children_act()

    assert pool.running(0) == queued  # handed out again, to the now idle child
    assert pool.workforce.tasks[-1][1][0] == queued
    pool.reply(0)
    pool.advance(1)
    record = pool.queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 1)
    assert [lease.job_id for lease in pool.began] == [running, queued]
    assert [job for job, _ in pool.events.started] == [running, queued]  # once per start


def test_a_queued_job_the_child_started_after_its_answer_was_read_is_reported_then() -> None:
    pool, running, queued = _holding()
    pool.sup.child_replied(0, pool.answer(0), pool.now)  # read before the child moved on
    assert [job for job, _ in pool.events.started] == [running]
    assert pool.sup.next_wake(pool.now) <= pool.now + LOOK_EVERY_S  # it looks again

    pool.children_act()  # the child starts it
    pool.sup.tick(pool.now)

    assert [job for job, _ in pool.events.started] == [running, queued]
    pool.reply(0)
    assert [job for job, _ in pool.events.started] == [running, queued]


def test_a_skip_of_an_earlier_send_of_the_same_job_is_not_taken_for_its_latest() -> None:
    pool, _, _queued = _holding()
    slot = pool.sup.slots[0]
    first = slot.queued
    assert first is not None
    pool.sup.child_replied(0, pool.answer(0), pool.now)
    pool.sup.child_skipped(0, first.task, first.lease.token, pool.now)  # sent again: task 2
    again = slot.job
    assert again is not None
    assert again.task == 2

    pool.sup.child_skipped(0, first.task, first.lease.token, pool.now)  # a stray repeat

    assert slot.job is again


def test_a_child_killed_holding_a_queued_job_gives_it_back_unstarted_to_its_successor() -> None:
    pool, running, queued = _holding()

    pool.sup.child_exited(0, -9, pool.now)  # the child never answered about its running job
    pool.sup.child_ready(0, pool.now)
    pool.children_act()

    assert pool.queue.get(running).errors[-1].signal == 9  # type: ignore[union-attr]
    assert pool.running(0) == queued
    pool.reply(0)
    pool.advance(1)
    record = pool.queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 1)
    assert [lease.job_id for lease in pool.began].count(queued) == 1


def test_a_child_that_dies_after_answering_spends_the_attempt_of_the_job_it_had_started() -> None:
    pool, _, queued = _holding()
    pool.take_up_queued(0)  # it answered, then started the next
    pool.sup.child_replied(0, pool.answer(0), pool.now)

    pool.sup.child_exited(0, -9, pool.now)

    record = pool.queue.get(queued)
    assert record is not None
    assert (record.attempts, record.errors[-1].signal) == (1, 9)
    assert [job for job, _ in pool.events.started].count(queued) == 1


def test_a_child_that_dies_after_answering_but_before_starting_its_queued_job_gives_it_back() -> (
    None
):
    pool, running, queued = _holding()
    pool.sup.child_replied(0, pool.answer(0), pool.now)  # read before the child moved on

    pool.sup.child_exited(0, -9, pool.now)  # and it never started the queued job
    assert [job for job, _ in pool.events.started] == [running]
    pool.sup.child_ready(0, pool.now)
    pool.children_act()

    assert pool.running(0) == queued
    pool.reply(0)
    pool.advance(1)
    record = pool.queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts, record.errors) == (JobState.COMPLETED, 1, ())
    assert [job for job, _ in pool.events.started] == [running, queued]


def test_a_child_past_its_hard_limit_is_killed_rather_than_left_to_start_its_queued_job() -> None:
    pool, _, queued = _holding(timeout_s=5)
    pool.advance(5.5)  # past the running job's hard limit: SIGTERM
    assert pool.workforce.told("terminate") == [0]

    pool.reply(0)  # it finished anyway, just then, and may have started the next one

    assert pool.workforce.told("kill") == [0]  # which must not run on unwatched
    outcomes = [(job, outcome.kind) for job, outcome in pool.events.finished]
    assert (queued, OutcomeKind.ABANDONED) in outcomes  # to the queue's recovery
    pool.sup.child_exited(0, -9, pool.now)
    assert queued not in [lease.job_id for lease in pool.held()]


def test_a_child_killed_for_its_running_jobs_lease_gives_back_a_queued_job_it_never_reached() -> (
    None
):
    pool, running, queued = _holding()
    pool.queue.release(pool.queue.get(running) and pool.sup.slots[0].job.lease)  # type: ignore[union-attr]

    pool.advance(10)  # the renewal finds the running job's lease lost: its child is killed

    assert pool.workforce.told("kill") == [0]
    assert pool.workforce.starts_by[0, 1] == float("-inf")
    assert [lease.job_id for lease in pool.sup.buffer] == [queued]


def test_a_child_killed_for_its_running_jobs_lease_gives_up_a_queued_job_it_may_have_started() -> (
    None
):
    pool, running, queued = _holding()
    pool.queue.release(pool.queue.get(running) and pool.sup.slots[0].job.lease)  # type: ignore[union-attr]
    pool.workforce.unread.add(0)  # it answered: it may be running the queued job already

    pool.advance(10)

    assert pool.workforce.told("kill") == [0]
    abandoned = [
        job for job, outcome in pool.events.finished if outcome.kind is OutcomeKind.ABANDONED
    ]
    assert sorted(abandoned) == sorted([running, queued])
    assert queued not in [lease.job_id for lease in pool.held()]


def test_a_failed_call_withdraws_queued_jobs_which_wait_for_the_queue_in_the_buffer() -> None:
    pool, _, queued = _holding()
    pool.queue.down = True

    pool.advance(10.1)  # the renewal fails

    assert pool.workforce.starts_by[0, 1] == float("-inf")
    assert pool.sup.slots[0].queued is None
    assert [lease.job_id for lease in pool.sup.buffer] == [queued]
    pool.reply(0)
    assert pool.sup.slots[0].job is None  # its start could not be reported: it waits
    pool.queue.down = False
    pool.advance(1.0)
    assert pool.running(0) == queued


def test_no_job_is_queued_behind_a_resent_one_until_the_child_skipped_its_withdrawn_send() -> None:
    config = PoolConfig(concurrency=1, prefetch=2, idle_wait=FAST, cancel_check=None)
    pool, _, queued = _holding(config)
    pool.enqueue(1)
    pool.queue.down = True
    pool.advance(10.1)  # withdrawn: task 1 waits in the pipe, to be skipped
    pool.queue.down = False
    pool.advance(1.0)
    pool.reply(0)  # the queued job is sent again, as task 2
    slot = pool.sup.slots[0]
    assert (pool.running(0), slot.sent, slot.queued) == (queued, 3, None)

    pool.sup.child_skipped(0, 1, pool.workforce.tasks[1][1][6], pool.now)

    assert slot.queued is not None
    assert (slot.queued.task, pool.running(0)) == (3, queued)


def test_a_queued_job_that_may_have_started_is_not_withdrawn() -> None:
    pool, _, queued = _holding()
    pool.workforce.unread.add(0)  # an answer is in the pipe: the child may have moved on
    pool.queue.down = True

    pool.advance(10.1)

    slot = pool.sup.slots[0]
    assert slot.queued is not None
    assert slot.queued.lease.job_id == queued


def test_a_job_queued_behind_a_long_one_goes_to_a_child_that_is_idle_with_nothing_buffered() -> (
    None
):
    config = PoolConfig(concurrency=2, prefetch=2, idle_wait=FAST, cancel_check=None)
    pool = Harness(config)
    pool.enqueue(4)
    pool.start()  # each child runs one job and holds one queued
    stuck = pool.sup.slots[0].queued
    assert stuck is not None
    pool.reply(1)
    pool.reply(1)  # child 1 ran both of its jobs; child 0's first one runs on

    assert pool.running(1) == stuck.lease.job_id  # not left behind child 0's running job
    assert pool.sup.slots[0].queued is None
    assert pool.workforce.starts_by[0, stuck.task] == float("-inf")  # child 0 will skip it
    pool.reply(0)
    pool.sup.child_skipped(0, stuck.task, stuck.lease.token, pool.now)
    pool.reply(1)
    pool.sup.quiet(pool.now)
    assert [lease.job_id for lease in pool.began].count(stuck.lease.job_id) == 1
    assert _attempts(pool, stuck.lease.job_id) == 1
    assert pool.queue.stats("default").completed == 4


def test_a_job_queued_behind_a_running_one_stays_if_its_child_may_have_moved_on_to_it() -> None:
    config = PoolConfig(concurrency=2, prefetch=2, idle_wait=FAST, cancel_check=None)
    pool = Harness(config)
    pool.enqueue(4)
    pool.start()
    stuck = pool.sup.slots[0].queued
    assert stuck is not None
    pool.workforce.unread.add(0)  # child 0 answered, and may have started it just then
    pool.reply(1)
    pool.reply(1)

    assert pool.sup.slots[0].queued is stuck
    assert pool.sup.slots[1].job is None


def test_a_cancelled_queued_job_ends_cancelled_without_starting_or_stopping_its_child() -> None:
    config = PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST, cancel_check=timedelta(1))
    pool, running, queued = _holding(config)
    pool.queue.cancel(queued, reason="customer left")

    pool.advance(1.1)

    record = pool.queue.get(queued)
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert queued not in [lease.job_id for lease in pool.began]
    assert pool.workforce.starts_by[0, 1] == float("-inf")
    assert pool.workforce.told("interrupt") == []
    assert pool.running(0) == running


def test_a_cancelled_queued_job_that_may_have_started_is_stopped_once_it_has() -> None:
    config = PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST, cancel_check=timedelta(1))
    pool, _, queued = _holding(config)
    pool.workforce.unread.add(0)  # the child answered, and may have started it just then
    pool.queue.cancel(queued, reason="customer left")
    pool.advance(1.1)
    assert pool.workforce.told("interrupt") == []
    assert pool.workforce.starts_by[0, 1] == float("-inf")  # in case it has not yet

    pool.sup.child_replied(0, pool.answer(0), pool.now)  # it had: its handler is interrupted

    assert pool.running(0) == queued
    assert pool.workforce.told("interrupt") == [0]
    pool.advance(1.1)  # no renewal gives it its start-by time back
    assert pool.workforce.starts_by[0, 1] == float("-inf")
    pool.fail(0, JobCancelled(queued, "customer left"))
    record = pool.queue.get(queued)
    assert record is not None
    assert record.state is JobState.CANCELLED


def test_a_child_is_sent_no_job_it_would_not_run_before_its_recycling() -> None:
    config = PoolConfig(concurrency=1, prefetch=2, idle_wait=FAST, max_tasks_per_child=2)
    pool = Harness(config)
    pool.enqueue(5)
    pool.start()
    first_pid = pool.sup.slots[0].pid
    pool.reply(0)  # its second job starts; no third is sent to it

    sent = len(pool.workforce.tasks)
    pool.reply(0)

    assert (sent, pool.sup.slots[0].queued) == (2, None)
    assert pool.events.recycled == [(first_pid, "max tasks")]


def test_a_child_over_its_memory_limit_gives_back_its_queued_job_unstarted() -> None:
    config = PoolConfig(
        concurrency=1, prefetch=1, idle_wait=FAST, cancel_check=None, max_memory_per_child_mb=1
    )
    pool, running, queued = _holding(config)
    slot = pool.sup.slots[0]
    first_pid = slot.pid
    assert slot.job is not None
    over = Reply(True, None, 0.01, 2 << 20, slot.pid, slot.job.lease.token)

    pool.sup.child_replied(0, over, pool.now)  # the child skips its queued job (Runner.serve)

    assert (slot.job, slot.queued) == (None, None)
    assert [lease.job_id for lease in pool.held()] == [queued]
    assert pool.events.recycled == [(first_pid, "RSS 2 MiB")]
    pool.sup.child_skipped(0, 1, pool.workforce.tasks[1][1][6], pool.now)
    pool.sup.child_exited(0, 0, pool.now)
    pool.sup.child_ready(0, pool.now)
    pool.children_act()
    assert pool.running(0) == queued
    pool.reply(0)
    pool.advance(1)
    record = pool.queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 1)
    assert [job for job, _ in pool.events.started] == [running, queued]


def test_a_warm_stop_releases_the_jobs_queued_in_children() -> None:
    pool, running, queued = _holding()

    pool.sup.stopping.request()
    pool.advance(0)

    record = pool.queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.READY, 0)
    assert pool.workforce.starts_by[0, 1] == float("-inf")
    assert pool.running(0) == running
    assert pool.events.finished[-1] == (queued, pool.events.finished[-1][1])
    assert pool.events.finished[-1][1].kind is OutcomeKind.RELEASED
