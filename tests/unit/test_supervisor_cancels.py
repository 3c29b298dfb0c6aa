"""The supervisor stopping a running job that a cancel asked to stop, driven by hand: it learns
of the cancel by a renew within ``cancel_check``, interrupts the child, kills it after
``term_grace`` if it runs on, and the job ends cancelled, never retried; the same renew stores
a child's progress report (fake children, a memory queue, a manual clock)."""

import logging
from datetime import timedelta

import pytest

from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.domain import JobCancelled, JobState, Progress, RetryPolicy
from tests.log_support import foundry_messages
from tests.pool_support import FAST, Harness

CHECKED = PoolConfig(
    concurrency=1,
    idle_wait=FAST,
    cancel_check=timedelta(seconds=1),
    term_grace=timedelta(seconds=2),
)


def _cancelled_while_running() -> tuple[Harness, str]:
    pool = Harness(CHECKED)
    (job_id,) = pool.enqueue(1, retry=RetryPolicy(max_attempts=5))
    pool.start()
    pool.advance(0.1)  # the first renew: nothing asked yet
    pool.queue.cancel(job_id, reason="customer left")
    return pool, job_id


def test_the_child_is_interrupted_within_the_cancel_check() -> None:
    pool, _ = _cancelled_while_running()

    pool.advance(0.5)
    before = pool.workforce.told("interrupt")
    pool.advance(0.5)

    assert (before, pool.workforce.told("interrupt")) == ([], [0])


def test_a_handler_that_stops_ends_its_job_cancelled_not_retried() -> None:
    pool, job_id = _cancelled_while_running()
    pool.advance(1)

    pool.fail(0, JobCancelled(job_id, "a cancel asked the running job to stop"))

    record = pool.queue.get(job_id)
    assert record is not None
    assert (record.state, record.reason) == (JobState.CANCELLED, "customer left")
    outcome = pool.events.finished[-1][1]
    assert (outcome.kind, outcome.reason) == (OutcomeKind.CANCELLED, "customer left")
    assert pool.workforce.told("terminate") == []


def test_a_cancelled_job_is_logged_as_cancelled_not_as_dead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool, job_id = _cancelled_while_running()
    pool.advance(1)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="foundry")

    pool.fail(0, JobCancelled(job_id, "a cancel asked the running job to stop"))

    assert foundry_messages(caplog, logging.INFO) == [
        f"job {job_id} was cancelled while it ran: customer left"
    ]
    assert [record.levelno for record in caplog.records if record.name.startswith("foundry")] == [
        logging.INFO
    ]


def test_a_handler_that_runs_on_is_terminated_after_the_grace_and_ends_cancelled() -> None:
    pool, job_id = _cancelled_while_running()
    pool.advance(1)

    pool.advance(1.9)
    early = pool.workforce.told("terminate")
    pool.advance(0.1)
    terminated = pool.workforce.told("terminate")
    pool.sup.child_exited(0, -15, pool.now)

    assert (early, terminated) == ([], [0])
    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert record.errors[-1].type == "foundry.domain.outcome_errors.JobCancelled"


def test_a_handler_that_finishes_despite_the_cancel_completes() -> None:
    pool, job_id = _cancelled_while_running()
    pool.advance(1)

    pool.reply(0, value=7)

    record = pool.queue.get(job_id)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, 7)


def test_without_a_cancel_check_the_pool_learns_at_the_lease_renewal() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.cancel(job_id)

    pool.advance(9.9)
    before = pool.workforce.told("interrupt")
    pool.advance(0.1)

    assert (before, pool.workforce.told("interrupt")) == ([], [0])


def test_a_childs_progress_report_is_stored_by_the_next_renew() -> None:
    pool = Harness(CHECKED)
    (job_id,) = pool.enqueue(1)
    pool.start()
    token = pool.sup.slots[0].job.lease.token  # type: ignore[union-attr]

    pool.sup.child_progress(0, "someone-else", Progress(0.9))
    pool.sup.child_progress(0, token, Progress(0.5, "halfway"))
    pool.advance(1)

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.progress == Progress(0.5, "halfway")
