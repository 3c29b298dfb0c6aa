"""Contract: dead letters (Q10): history, order, requeue, purge, delete and retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, JobState, Retry, RetryPolicy, RunAfter
from foundry.domain.error_info import MAX_MESSAGE, MAX_TRACEBACK
from foundry.ports import ClaimRequest, DeadLetterRetention
from tests.backends import LEASE, MS, Queue, job, state_of


def kill(queue: Queue, job_id: str, reason: str = "gave up", queue_name: str = "default") -> None:
    queue.enqueue(job(id=job_id, queue=queue_name))
    [lease] = queue.claim(ClaimRequest([queue_name], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom", f"{job_id} failed"), Dead(reason))


def test_a_dead_letter_keeps_payload_and_the_whole_error_history(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", payload={"order": 7}, retry=RetryPolicy(max_attempts=3)))
    for attempt in range(1, 4):
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        error = ErrorInfo("Boom", f"try {attempt}", traceback="tb", worker="w1", exit_code=3)
        decision = Dead("gave up after 3") if attempt == 3 else Retry(timedelta(0))
        queue.fail(lease, error, decision)

    [letter] = queue.dead("default")

    assert letter.job.payload == {"order": 7}
    assert letter.reason == "gave up after 3"
    assert letter.attempts == 3
    assert letter.died_at == clock.now()
    assert [(e.message, e.attempt, e.worker, e.exit_code) for e in letter.errors] == [
        ("try 1", 1, "w1", 3),
        ("try 2", 2, "w1", 3),
        ("try 3", 3, "w1", 3),
    ]


def test_dead_letters_are_listed_newest_first_with_offset_and_limit(
    queue: Queue, clock: ManualClock
) -> None:
    for name in ["a", "b", "c", "d"]:
        kill(queue, name)
        clock.advance(MS)

    newest = [letter.job.id for letter in queue.dead("default")]
    page = [letter.job.id for letter in queue.dead("default", offset=1, limit=2)]

    assert newest == ["d", "c", "b", "a"]
    assert page == ["c", "b"]


def test_requeue_dead_gives_a_fresh_attempt_budget_and_keeps_the_history(
    queue: Queue,
) -> None:
    kill(queue, "a")
    queue.enqueue(job(id="waiting"))

    requeued = queue.requeue_dead("default")

    assert requeued == 1
    assert queue.dead("default") == []
    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    assert [lease.job_id for lease in claimed] == ["waiting", "a"]
    assert claimed[1].attempt == 1
    record = queue.get("a")
    assert record is not None
    assert [e.message for e in record.errors] == ["a failed"]


def test_requeue_dead_by_id_moves_only_those_named_and_ignores_unknown_ids(
    queue: Queue,
) -> None:
    kill(queue, "a")
    kill(queue, "b")

    requeued = queue.requeue_dead("default", ["b", "nope"])

    assert requeued == 1
    assert [letter.job.id for letter in queue.dead("default")] == ["a"]
    assert queue.stats("default").ready == 1


def test_purge_dead_removes_every_dead_letter_of_that_queue_only(queue: Queue) -> None:
    kill(queue, "a")
    kill(queue, "b")
    kill(queue, "c", queue_name="other")

    purged = queue.purge_dead("default")

    assert purged == 2
    assert queue.dead("default") == []
    assert queue.get("a") is None
    assert len(queue.dead("other")) == 1


def test_delete_removes_a_dead_letter(queue: Queue) -> None:
    kill(queue, "a")

    deleted = queue.delete("default", "a")

    assert deleted is True
    assert queue.dead("default") == []
    assert queue.stats("default").dead == 0


def _one_job_in_each_state(queue: Queue) -> None:
    """Jobs named after their states: dead, done, active, ready, later (delayed) and waits."""
    kill(queue, "dead")
    queue.enqueue(job(id="done"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)
    queue.enqueue(job(id="active"))
    queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.enqueue(job(id="ready"))
    queue.enqueue(job(id="later", schedule=RunAfter(timedelta(hours=1))))
    queue.enqueue(job(id="waits", after=("ready",)))


def test_delete_dead_removes_a_dead_letter_and_no_job_in_any_other_state(
    queue: Queue,
) -> None:
    _one_job_in_each_state(queue)

    deleted = {
        job_id: queue.delete_dead("default", job_id)
        for job_id in ("ready", "later", "waits", "active", "done", "nope", "dead")
    }

    assert deleted == {
        "ready": False,
        "later": False,
        "waits": False,
        "active": False,
        "done": False,
        "nope": False,
        "dead": True,
    }
    assert queue.get("dead") is None
    assert queue.stats("default").dead == 0
    assert {job_id: state_of(queue, job_id) for job_id in ("later", "waits", "done")} == {
        "later": JobState.DELAYED,
        "waits": JobState.WAITING,
        "done": JobState.COMPLETED,
    }


def test_delete_dead_leaves_a_dead_letter_that_was_requeued_meanwhile(queue: Queue) -> None:
    kill(queue, "a")
    queue.requeue_dead("default", ["a"])

    deleted = queue.delete_dead("default", "a")

    assert deleted is False
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert lease.job_id == "a"


def test_delete_pending_removes_a_pending_job_and_no_job_in_any_other_state(
    queue: Queue,
) -> None:
    _one_job_in_each_state(queue)

    deleted = {
        job_id: queue.delete_pending("default", job_id)
        for job_id in ("dead", "done", "active", "nope", "waits", "later", "ready")
    }

    assert deleted == {
        "dead": False,
        "done": False,
        "active": False,
        "nope": False,
        "waits": True,
        "later": True,
        "ready": True,
    }
    assert [letter.job.id for letter in queue.dead("default")] == ["dead"]
    assert queue.stats("default").pending == 0


def test_delete_dead_of_another_queue_is_false(queue: Queue) -> None:
    kill(queue, "a", queue_name="one")

    deleted = queue.delete_dead("two", "a")

    assert deleted is False
    assert len(queue.dead("one")) == 1


def test_retention_by_count_trims_the_oldest_and_counts_it(
    make_queue: Callable[..., Queue], clock: ManualClock
) -> None:
    queue = make_queue(retention=DeadLetterRetention(max_count=2, max_age=None))
    for name in ["a", "b", "c"]:
        kill(queue, name)
        clock.advance(MS)

    letters = [letter.job.id for letter in queue.dead("default")]

    assert letters == ["c", "b"]
    assert queue.get("a") is None
    stats = queue.stats("default")
    assert (stats.dead, stats.dead_trimmed) == (2, 1)


def test_retention_by_age_keeps_a_letter_exactly_max_age_old(
    make_queue: Callable[..., Queue], clock: ManualClock
) -> None:
    queue = make_queue(retention=DeadLetterRetention(max_count=None, max_age=timedelta(hours=1)))
    kill(queue, "old")
    clock.advance(timedelta(hours=1))

    kill(queue, "new")

    assert [letter.job.id for letter in queue.dead("default")] == ["new", "old"]
    assert queue.stats("default").dead_trimmed == 0


def test_retention_by_age_trims_older_letters_when_one_is_added(
    make_queue: Callable[..., Queue], clock: ManualClock
) -> None:
    queue = make_queue(retention=DeadLetterRetention(max_count=None, max_age=timedelta(hours=1)))
    kill(queue, "old")
    kill(queue, "also-old")
    clock.advance(timedelta(hours=1) + MS)

    kill(queue, "new")

    assert [letter.job.id for letter in queue.dead("default")] == ["new"]
    assert queue.get("old") is None
    assert queue.stats("default").dead_trimmed == 2


def test_a_dead_job_is_not_claimable(queue: Queue) -> None:
    kill(queue, "a")

    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert claimed == []
    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason == "gave up"


def test_an_error_with_text_utf8_cannot_carry_is_kept_escaped(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    name = "report-\udcff.csv"  # a file name os.fsdecode escaped

    queue.fail(lease, ErrorInfo("FileNotFoundError", name, traceback=name), Dead("gave up"))

    [letter] = queue.dead("default")
    [error] = letter.errors
    assert (error.message, error.traceback) == ("report-\\udcff.csv", "report-\\udcff.csv")


def test_a_huge_error_keeps_the_start_of_its_message_and_the_end_of_its_traceback(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    message, traceback = "m" * 5_000_000 + "end", "start" + "t" * 5_000_000

    queue.fail(lease, ErrorInfo("ValueError", message, traceback=traceback), Dead("gave up"))

    [letter] = queue.dead("default")
    [error] = letter.errors
    kept_message = error.message.index(".")
    kept_traceback = len(error.traceback) - error.traceback.index(")...") - len(")...")
    assert len(error.message) <= MAX_MESSAGE
    assert kept_message > MAX_MESSAGE - 100
    assert (
        error.message
        == "m" * kept_message + f"... ({len(message) - kept_message} more characters cut)"
    )
    assert len(error.traceback) <= MAX_TRACEBACK
    assert kept_traceback > MAX_TRACEBACK - 100
    assert (
        error.traceback
        == f"({len(traceback) - kept_traceback} characters cut)..." + "t" * kept_traceback
    )
