"""When the parent reads its children's answers: as each comes, unless every child runs a
job and holds the next queued and the recent jobs ran for about as long; then by the moment
a child could run out of work (fake children, a memory queue, a manual clock)."""

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.reads import LATE_SHARE, RECENT, STEADY_MAX_S, STEADY_MIN_S
from tests.pool_support import FAST, Harness

#: Two children, each running a job and holding the next one queued.
HOLDING = PoolConfig(concurrency=2, prefetch=4, idle_wait=FAST, cancel_check=None)


def _holding(runtimes: list[float]) -> Harness:
    """A pool whose children answered about jobs that ran ``runtimes``, in turns, 1 ms
    apart; each child runs a job and holds the next queued."""
    pool = Harness(HOLDING)
    pool.enqueue(len(runtimes) + 8)
    pool.start()
    for n, runtime in enumerate(runtimes):
        pool.clock.advance(0.001)
        pool.reply(n % 2, runtime=runtime)
    assert all(slot.job is not None and slot.queued is not None for slot in pool.sup.slots)
    return pool


def _earliest_start(pool: Harness) -> float:
    return min(slot.job.started for slot in pool.sup.slots if slot.job is not None)


def test_answers_are_read_as_they_come_until_enough_jobs_ran() -> None:
    pool = _holding([0.01] * (RECENT - 1))

    assert pool.sup.read_by(pool.now) == pool.now


def test_with_jobs_of_one_length_answers_are_read_by_a_share_of_a_job_after_the_first_end() -> None:
    pool = _holding([0.01] * RECENT)

    read_by = pool.sup.read_by(pool.now)

    assert read_by == _earliest_start(pool) + 0.01 + LATE_SHARE * 0.01
    assert read_by > pool.now


def test_the_expected_end_is_the_median_run_time_and_the_slack_a_share_of_the_shortest() -> None:
    runtimes = [0.010, 0.011, 0.012, 0.013, 0.013, 0.013, 0.013, 0.030]
    pool = _holding(runtimes)

    read_by = pool.sup.read_by(pool.now)

    assert read_by == _earliest_start(pool) + 0.013 + LATE_SHARE * 0.010


def test_jobs_of_uneven_lengths_have_their_answers_read_as_they_come() -> None:
    pool = _holding([0.010, 0.010, 0.010, 0.015, 0.015, 0.015, 0.015, 0.015])

    assert pool.sup.read_by(pool.now) == pool.now


def test_an_answer_waits_at_most_80_ms_after_the_earliest_running_jobs_start() -> None:
    pool = _holding([STEADY_MAX_S] * RECENT)  # the longest jobs whose answers are gathered

    read_by = pool.sup.read_by(pool.now)

    assert read_by > pool.now
    assert read_by - _earliest_start(pool) <= 0.08 + 1e-9  # (float rounding)


def test_jobs_too_short_or_too_long_have_their_answers_read_as_they_come() -> None:
    for runtime in (STEADY_MIN_S / 2, STEADY_MAX_S * 1.5):
        pool = _holding([runtime] * RECENT)

        assert pool.sup.read_by(pool.now) == pool.now


def test_once_a_child_could_be_out_of_work_answers_are_read_as_they_come() -> None:
    pool = _holding([0.01] * RECENT)
    read_by = pool.sup.read_by(pool.now)

    pool.clock.advance(read_by - pool.now)

    assert pool.sup.read_by(pool.now) == pool.now


def test_a_child_holding_no_next_job_has_its_answer_read_as_it_comes() -> None:
    pool = _holding([0.01] * RECENT)
    for n in range(20):  # until the queue is drained: a child holds nothing queued
        if any(slot.queued is None for slot in pool.sup.slots):
            break
        pool.clock.advance(0.001)
        pool.reply(n % 2)
    assert any(slot.job is not None and slot.queued is None for slot in pool.sup.slots)

    assert pool.sup.read_by(pool.now) == pool.now


def test_while_stopping_answers_are_read_as_they_come() -> None:
    pool = _holding([0.01] * RECENT)

    pool.sup.stopping.request(cold=False)

    assert pool.sup.read_by(pool.now) == pool.now
