"""Dispatching through the public dispatchers: the sync ``Dispatcher`` and the
``AsyncDispatcher`` build the same jobs and keep the same promises, on every queue backend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.registry import JobRegistry
from foundry.domain import InvalidJob, JobState, UniqueSpec, UnknownHandler
from tests.backends import Queue, QueueBackend
from tests.dispatch_support import AnyDispatcher, Dispatchers
from tests.pytz_like import PytzLikeZone

registry = JobRegistry()


@registry.job(name="resize", queue="images", priority=2)
def resize(width: int) -> int:
    return width


@registry.job(name="report", unique=UniqueSpec(key="report:{user}"))
def report(user: str) -> str:
    return user


@pytest.fixture
def dispatcher(
    dispatchers: Dispatchers, queue_backend: QueueBackend, queue: Queue
) -> AnyDispatcher:
    """Each dispatcher in turn, over the current backend's ``queue`` (its store, its clock)."""
    return dispatchers.over(queue_backend, queue, registry)


def test_dispatch_enqueues_a_ready_job_with_the_handlers_defaults(
    dispatcher: AnyDispatcher, queue: Queue, clock: ManualClock
) -> None:
    job_id = dispatcher.dispatch("resize", {"width": 10})

    record = queue.get(job_id)
    assert record is not None
    assert record.state is JobState.READY
    assert (record.job.queue, record.job.priority, record.job.payload) == (
        "images",
        2,
        {"width": 10},
    )
    assert record.job.created_at == clock.now()


@pytest.mark.parametrize(
    ("target", "payload"),
    [
        ("resize", {"width": 10}),
        (resize, MappingProxyType({"width": 10})),
        ("report", {"user": "ann"}),
    ],
)
def test_a_plain_dispatch_builds_the_job_the_registry_makes(
    dispatcher: AnyDispatcher, queue: Queue, target: Any, payload: Mapping[str, object]
) -> None:
    record = queue.get(dispatcher.dispatch(target, payload))

    assert record is not None
    job = record.job
    assert job == registry.make_job(
        registry.name_of(target), payload, id=job.id, created_at=job.created_at
    )


def test_dispatch_accepts_the_registered_function_as_target(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    job_id = dispatcher.dispatch(resize, {"width": 1})

    record = queue.get(job_id)
    assert record is not None
    assert record.job.name == "resize"


@pytest.mark.parametrize("delay", [timedelta(seconds=5), 5, 5.0])
def test_a_delayed_dispatch_waits_until_its_delay_has_passed(
    dispatcher: AnyDispatcher, queue: Queue, clock: ManualClock, delay: timedelta | float
) -> None:
    job_id = dispatcher.dispatch("resize", {"width": 1}, delay=delay)

    record = queue.get(job_id)
    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.run_at == clock.now() + timedelta(seconds=5)


def test_dispatch_at_a_moment_schedules_it_then(
    dispatcher: AnyDispatcher, queue: Queue, clock: ManualClock
) -> None:
    moment = clock.now() + timedelta(minutes=1)
    in_berlin = moment.astimezone(timezone(timedelta(hours=1)))

    job_id = dispatcher.dispatch("resize", {"width": 1}, at=moment)
    other_id = dispatcher.dispatch("resize", {"width": 2}, at=in_berlin)

    record, other = queue.get(job_id), queue.get(other_id)
    assert record is not None
    assert other is not None
    assert record.run_at == moment
    assert (other.run_at, other.run_at.utcoffset()) == (moment, timedelta(0))  # given in UTC


def test_a_moment_in_a_pytz_zone_attached_without_localize_is_refused_naming_the_fix(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    paris = PytzLikeZone("Europe/Paris")
    misread = datetime(2030, 6, 1, 9, 0, tzinfo=paris)  # 09:00+00:09, not 09:00+02:00

    with pytest.raises(InvalidJob, match=r"Europe/Paris.*\+00:09.*\+02:00.*localize"):
        dispatcher.dispatch("resize", {"width": 1}, at=misread)
    assert queue.stats("images").delayed == 0

    job_id = dispatcher.dispatch("resize", {"width": 1}, at=paris.localize(misread))
    record = queue.get(job_id)
    assert record is not None
    assert record.run_at == datetime(2030, 6, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"delay": "5"}, r"delay='5' must be a timedelta or a number of seconds"),
        ({"delay": float("nan")}, r"delay=nan must be a timedelta or a number of seconds"),
        ({"delay": True}, r"delay=True must be"),
        ({"delay": -1}, r"delay must not be negative"),
        ({"at": 5}, r"at=5 must be an aware datetime"),
    ],
)
def test_a_bad_delay_or_moment_is_an_invalid_job_naming_the_fix(
    dispatcher: AnyDispatcher, queue: Queue, when: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidJob, match=message):
        dispatcher.dispatch("resize", {"width": 1}, **when)

    assert queue.stats("images").delayed == 0


@pytest.mark.parametrize("unique", [True, "resize-1", {"key": "resize-1"}])
def test_a_unique_that_is_not_a_unique_spec_is_an_invalid_job_naming_the_fix(
    dispatcher: AnyDispatcher, queue: Queue, unique: object
) -> None:
    with pytest.raises(InvalidJob, match=r"must be a UniqueSpec or None, like UniqueSpec\("):
        dispatcher.dispatch("resize", {"width": 1}, unique=unique)

    assert queue.stats("images").ready == 0


def test_delay_and_at_together_are_an_invalid_job(
    dispatcher: AnyDispatcher, clock: ManualClock
) -> None:
    with pytest.raises(InvalidJob, match="schedule"):
        dispatcher.dispatch("resize", {}, delay=timedelta(1), at=clock.now())


def test_per_call_options_override_the_defaults(dispatcher: AnyDispatcher, queue: Queue) -> None:
    job_id = dispatcher.dispatch("resize", {"width": 1}, queue="slow", priority=-1, job_id="j-1")

    record = queue.get("j-1")
    assert job_id == "j-1"
    assert record is not None
    assert (record.job.queue, record.job.priority) == ("slow", -1)


def test_a_second_dispatch_with_the_same_job_id_stores_nothing_new(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    first = dispatcher.dispatch("resize", {"width": 1}, job_id="same")

    second = dispatcher.dispatch("resize", {"width": 2}, job_id="same")

    record = queue.get("same")
    assert first == second == "same"
    assert record is not None
    assert record.job.payload == {"width": 1}
    assert queue.stats("images").ready == 1


def test_a_duplicate_unique_job_returns_the_id_of_the_pending_one(
    dispatcher: AnyDispatcher,
) -> None:
    first = dispatcher.dispatch("report", {"user": "ann"})

    second = dispatcher.dispatch("report", {"user": "ann"})
    other = dispatcher.dispatch("report", {"user": "bob"})

    assert second == first
    assert other != first


def test_dispatch_many_enqueues_in_order_and_returns_the_ids(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    ids = dispatcher.dispatch_many([("resize", {"width": n}) for n in range(3)])

    payloads = [queue.get(job_id).job.payload for job_id in ids]  # type: ignore[union-attr]
    assert payloads == [{"width": 0}, {"width": 1}, {"width": 2}]


def test_dispatch_many_across_queues_keeps_the_callers_order_and_finds_duplicates(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    pending = dispatcher.dispatch("report", {"user": "ann"})

    ids = dispatcher.dispatch_many(
        [("resize", {"width": 1}), ("report", {"user": "ann"}), ("resize", {"width": 2})]
    )

    assert ids[1] == pending
    assert [queue.get(ids[i]).job.payload for i in (0, 2)] == [  # type: ignore[union-attr]
        {"width": 1},
        {"width": 2},
    ]
    assert sorted(queue.queues()) == ["default", "images"]


def test_an_unregistered_target_is_refused_before_anything_is_written(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    with pytest.raises(UnknownHandler):
        dispatcher.dispatch("nope", {})

    assert queue.queues() == []


def test_dispatch_many_refuses_a_batch_with_one_bad_payload_before_writing_any(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    with pytest.raises(InvalidJob) as refused:
        dispatcher.dispatch_many([("resize", {"width": 1}), ("resize", {"width": {1, 2}})])

    assert refused.value.field == "payload"
    assert queue.queues() == []


def test_dispatch_many_of_nothing_returns_no_ids(dispatcher: AnyDispatcher, queue: Queue) -> None:
    assert dispatcher.dispatch_many([]) == []
    assert queue.queues() == []


def test_dispatch_many_stamps_every_job_with_the_clock(
    dispatcher: AnyDispatcher, queue: Queue, clock: ManualClock
) -> None:
    ids = dispatcher.dispatch_many([("resize", {"width": n}) for n in range(2)])

    stamps = [queue.get(job_id).job.created_at for job_id in ids]  # type: ignore[union-attr]
    assert stamps == [clock.now(), clock.now()]
