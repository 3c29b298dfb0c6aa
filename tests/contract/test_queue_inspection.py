"""Contract: get, stats, queues, delete, purge, completed records, workers, time (Q1, Q11)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import (
    ConfigurationError,
    Dead,
    ErrorInfo,
    JobState,
    Retry,
    RunAfter,
    StaleLease,
)
from foundry.ports import ClaimRequest, Enqueued, QueuePort, QueueStats, WorkerInfo, WorkerRegistry
from tests.backends import LEASE, MS, Queue, QueueBackend, job, state_of


def test_get_shows_each_state_a_job_passes_through(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a", schedule=RunAfter(timedelta(seconds=1))))
    states = [state_of(queue, "a")]
    clock.advance(timedelta(seconds=1))
    states.append(state_of(queue, "a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    states.append(state_of(queue, "a"))
    queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(seconds=1)))
    states.append(state_of(queue, "a"))
    clock.advance(timedelta(seconds=1))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.complete(lease, "done")

    record = queue.get("a", "default")
    assert states == [JobState.DELAYED, JobState.READY, JobState.ACTIVE, JobState.DELAYED]
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.attempts == 2
    assert record.finished_at == clock.now()
    assert record.result == "done"


def test_get_of_an_active_job_shows_its_lease_deadline(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    queue.claim(ClaimRequest(["default"], lease=LEASE))

    record = queue.get("a")

    assert record is not None
    assert record.lease_deadline == clock.now() + LEASE
    assert record.attempts == 1


def test_get_of_an_unknown_job_or_another_queue_is_none(queue: Queue) -> None:
    queue.enqueue(job(id="a", queue="one"))

    assert queue.get("nope") is None
    assert queue.get("a", "two") is None
    assert queue.get("a", "one") is not None


def test_an_id_that_is_not_a_string_is_a_type_error_not_an_outage(queue: Queue) -> None:
    queue.enqueue(job(id="j1"))

    for call in (queue.get, queue.cancel):
        with pytest.raises(TypeError):
            call(["j1"])  # type: ignore[arg-type]
    assert state_of(queue, "j1") is JobState.READY


LATER = datetime(2030, 1, 1, tzinfo=UTC)
#: Admin and inspection calls given a value of the wrong type, and what the error names.
WRONG_TYPES: list[tuple[str, tuple[object, ...], str]] = [
    ("delete", ("default", ["j1"]), "expected the id string"),
    ("delete", (["default"], "j1"), "expected a queue name string"),
    ("delete_dead", ("default", 7), "expected the id string"),
    ("requeue_dead", ("default", "j1"), r"a list of job ids, got 'j1' \(str\); wrap one"),
    ("requeue_dead", ("default", [b"j1"]), "expected the id string"),
    ("pause", (5,), r"expected a queue name string, got 5 \(int\); pass one name"),
    ("resume", (None,), "expected a queue name string"),
    ("purge", (b"default",), "expected a queue name string"),
    ("purge_dead", (["default"],), "expected a queue name string"),
    ("stats", (1,), "expected a queue name string"),
    ("stats_many", ("default",), "a list of queue names, got 'default'"),
    ("oldest_ready_age", ("default",), "a list of queue names"),
    ("dead", (["default"],), "expected a queue name string"),
    ("jobs", ("default", "nope"), "expected a JobState"),
    ("jobs", ("default", 1), "expected a JobState"),
    ("wait", (["j1"], timedelta(0)), "expected the id string"),
    ("get", ("j1", ["default"]), "expected a queue name string"),
    ("cancel", ("j1", 5), "expected a queue name string"),
    ("pause_schedule", (5, "nightly"), "expected a queue name string"),
    ("pause_schedule", ("default", ["nightly"]), "expected a schedule name string"),
    (
        "resume_schedule",
        ("default", 5, datetime(2030, 1, 1, tzinfo=UTC)),
        "expected a schedule name string",
    ),
    ("forget_schedule", (None, "nightly"), "expected a queue name string"),
    ("batch", (["b1"],), "expected the id string that batch returned"),
    ("batch", ("b1", 5), "expected a queue name string"),
    ("cancel_batch", (5,), "expected the id string that batch returned"),
    ("batches", (5,), "expected a queue name string"),
]


def test_an_admin_call_given_a_wrong_type_is_a_type_error_naming_the_fix(queue: Queue) -> None:
    queue.enqueue(job(id="j1"))

    refused = []
    for name, args, message in WRONG_TYPES:
        with pytest.raises(TypeError, match=message):
            getattr(queue, name)(*args)
        refused.append(name)

    assert len(refused) == len(WRONG_TYPES)
    assert state_of(queue, "j1") is JobState.READY
    assert queue.stats("default") == QueueStats("default", ready=1)
    assert [record.job.id for record in queue.jobs("default", "ready")] == ["j1"]  # type: ignore[arg-type]


def test_a_completed_record_is_forgotten_after_completed_ttl(
    make_queue: Callable[..., Queue], clock: ManualClock
) -> None:
    queue = make_queue(completed_ttl=timedelta(minutes=5))
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)

    clock.advance(timedelta(minutes=5) - MS)
    kept = queue.get("a")
    clock.advance(MS)
    forgotten = queue.get("a")

    assert kept is not None
    assert forgotten is None


@pytest.mark.parametrize("ttl", [timedelta(0), -MS])
def test_a_completed_ttl_that_is_not_positive_is_a_configuration_error(
    make_queue: Callable[..., Queue], ttl: timedelta
) -> None:
    with pytest.raises(ConfigurationError, match="completed_ttl must be positive"):
        make_queue(completed_ttl=ttl)


def test_stats_count_sizes_and_running_totals(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue_many([job(id=f"j{i}") for i in range(5)])
    queue.enqueue(job(id="later", schedule=RunAfter(timedelta(minutes=1))))
    first, second, third = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3))
    queue.complete(first)
    queue.fail(second, ErrorInfo("Boom"), Dead("no"))

    stats = queue.stats("default")

    assert stats == QueueStats(
        "default", ready=2, delayed=1, active=1, dead=1, completed=1, failed=1
    )
    assert stats.pending == 3
    assert third.job_id == "j2"


def test_stats_count_the_jobs_waiting_for_others(queue: Queue) -> None:
    queue.enqueue_many(
        [
            job(id="first"),
            job(id="then", after=("first",)),
            job(id="also", after=("first",)),
            job(id="other", queue="other"),
        ]
    )

    one, other = queue.stats_many(["default", "other"])
    alone = queue.stats("default")

    assert (one.ready, one.waiting) == (1, 2)
    assert alone == one
    assert (other.ready, other.waiting) == (1, 0)


def test_stats_of_a_queue_never_used_are_zeros(queue: Queue) -> None:
    stats = queue.stats("never")

    assert stats == QueueStats("never")


def test_queues_lists_every_queue_that_held_a_job_sorted(queue: Queue) -> None:
    queue.enqueue(job(queue="zeta"))
    queue.enqueue(job(queue="alpha"))
    queue.enqueue(job(queue="mid"))

    names = queue.queues()

    assert names == ["alpha", "mid", "zeta"]


def test_a_queue_paused_before_its_first_job_is_listed_and_stays_listed(queue: Queue) -> None:
    queue.enqueue(job(queue="mid"))
    queue.pause("later")
    queue.resume("never-paused")

    paused = queue.queues()
    shown = queue.stats_many(paused)
    queue.resume("later")
    resumed = queue.queues()

    assert paused == ["later", "mid"]
    assert shown == [QueueStats("later", paused=True), QueueStats("mid", ready=1)]
    assert resumed == ["later", "mid"]


def test_delete_removes_pending_jobs_but_not_running_or_unknown_ones(queue: Queue) -> None:
    queue.enqueue_many([job(id="run"), job(id="wait")])
    queue.enqueue(job(id="later", schedule=RunAfter(timedelta(minutes=1))))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    outcomes = [queue.delete("default", name) for name in ["run", "wait", "later", "nope"]]

    assert outcomes == [False, True, True, False]
    assert queue.get("wait") is None
    queue.complete(lease)
    assert queue.delete("default", "run") is False


def test_purge_removes_ready_and_delayed_jobs_but_not_running_ones(queue: Queue) -> None:
    queue.enqueue_many([job(id="run"), job(id="a"), job(id="b")])
    queue.enqueue(job(id="later", schedule=RunAfter(timedelta(minutes=1))))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    purged = queue.purge("default")

    assert purged == 3
    assert queue.stats("default").pending == 0
    queue.complete(lease)
    assert queue.stats("default").completed == 1


def test_every_enqueued_job_ends_completed_or_dead_never_lost(
    queue: Queue, clock: ManualClock
) -> None:
    ids = [f"j{i}" for i in range(30)]
    queue.enqueue_many([job(id=job_id) for job_id in ids])
    for round_ in range(4):
        for lease in queue.claim(ClaimRequest(["default"], lease=LEASE, limit=30)):
            if int(lease.job_id[1:]) % 3 == round_ % 3:
                queue.complete(lease)
            elif round_ == 3:
                queue.fail(lease, ErrorInfo("Boom"), Dead("gave up"))
        clock.advance(LEASE + MS)
        queue.reap()

    states = {state_of(queue, job_id) for job_id in ids}

    assert states <= {JobState.COMPLETED, JobState.DEAD}
    stats = queue.stats("default")
    assert stats.completed + stats.dead == 30


def test_time_comes_from_the_clock_not_the_machine(queue: Queue, clock: ManualClock) -> None:
    clock.advance(timedelta(days=400))
    queue.enqueue(job(id="a"))

    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert lease.deadline == clock.now() + LEASE
    record = queue.get("a")
    assert record is not None
    assert record.enqueued_at == clock.now()


def test_a_waiting_claim_wakes_up_when_a_job_is_enqueued(queue: Queue) -> None:
    claimed: list[str] = []
    waiter = threading.Thread(
        target=lambda: claimed.extend(
            lease.job_id
            for lease in queue.claim(
                ClaimRequest(["default"], lease=LEASE, wait=timedelta(seconds=30))
            )
        )
    )
    waiter.start()

    queue.enqueue(job(id="arrives"))
    waiter.join(timeout=30)

    assert claimed == ["arrives"]


def test_an_undecodable_job_goes_dead_and_the_claim_carries_on(
    queue: Queue, queue_backend: QueueBackend
) -> None:
    queue.enqueue_many([job(id="broken"), job(id="fine")])
    queue_backend.corrupt(queue, "default", "broken")

    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))

    assert [lease.job_id for lease in claimed] == ["fine"]
    [letter] = queue.dead("default")
    assert letter.job.id == "broken"
    assert letter.reason.startswith("undecodable: ")


def test_enqueue_of_a_completed_id_changes_nothing_while_its_record_is_kept(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)

    outcome = queue.enqueue(job(id="a"))

    assert outcome == Enqueued("a")
    assert state_of(queue, "a") is JobState.COMPLETED
    assert queue.stats("default").ready == 0


def test_enqueue_of_an_id_whose_record_was_forgotten_stores_a_new_job(
    make_queue: Callable[..., Queue], clock: ManualClock
) -> None:
    queue = make_queue(completed_ttl=timedelta(seconds=1))
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)
    clock.advance(timedelta(seconds=1))

    outcome = queue.enqueue(job(id="a"))

    assert outcome == Enqueued("a")
    assert state_of(queue, "a") is JobState.READY
    with pytest.raises(StaleLease):
        queue.complete(lease)


def test_heartbeats_list_live_workers_sorted_and_expire_after_their_ttl(
    queue: Queue, clock: ManualClock
) -> None:
    def info(worker_id: str) -> WorkerInfo:
        now = clock.now()
        return WorkerInfo(worker_id, "host", 1, ("default",), 2, started_at=now, seen_at=now)

    queue.heartbeat(info("w2"), timedelta(seconds=10))
    queue.heartbeat(info("w1"), timedelta(seconds=20))

    clock.advance(timedelta(seconds=10) - MS)
    both = [worker.id for worker in queue.workers()]
    clock.advance(MS)
    one = [worker.id for worker in queue.workers()]

    assert both == ["w1", "w2"]
    assert one == ["w1"]


def test_forget_worker_removes_it_at_once(queue: Queue, clock: ManualClock) -> None:
    now = clock.now()
    queue.heartbeat(WorkerInfo("w1", "h", 1, (), 1, now, now), timedelta(seconds=10))

    queue.forget_worker("w1")

    assert queue.workers() == []


def test_a_heartbeat_refreshes_the_worker_info_and_its_ttl(
    queue: Queue, clock: ManualClock
) -> None:
    start = clock.now()
    queue.heartbeat(WorkerInfo("w1", "h", 1, (), 1, start, start), timedelta(seconds=10))
    later = clock.advance(timedelta(seconds=9))

    queue.heartbeat(
        WorkerInfo("w1", "h", 1, (), 1, start, later, processed=5), timedelta(seconds=10)
    )
    clock.advance(timedelta(seconds=9))

    [worker] = queue.workers()
    assert worker.processed == 5
    assert worker.seen_at == later


def test_the_backend_implements_the_queue_port_and_the_worker_registry(queue: Queue) -> None:
    implements = (isinstance(queue, QueuePort), isinstance(queue, WorkerRegistry))

    assert implements == (True, True)
