"""Job construction: every bad field is refused with an error that names it."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs
import pytest

from foundry.domain import (
    LATEST_RUN_AT,
    MAX_DELAY,
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_DEPTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
    AfterFailure,
    InvalidJob,
    InvalidQueueName,
    Job,
    RetryPolicy,
    RunAfter,
    RunAt,
    RunNow,
    UniqueSpec,
    validate_queue_name,
)
from tests.pytz_like import PytzLikeZone

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_job_needs_only_a_name_and_gets_safe_defaults() -> None:
    job = Job("send_email")

    assert job.queue == "default"
    assert job.priority == 0
    assert job.payload == {}
    assert isinstance(job.schedule, RunNow)
    assert job.max_attempts == 3
    assert len(job.id) == 22


def test_every_new_job_gets_a_different_id() -> None:
    ids = {Job("noop").id for _ in range(1000)}

    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 42}, "name"),
        ({"queue": "has{brace}"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"queue": "spaces are bad"}, "queue"),
        ({"queue": "q" * 101}, "queue"),
        ({"id": ""}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": "white space"}, "id"),
        ({"priority": PRIORITY_MAX + 1}, "priority"),
        ({"priority": PRIORITY_MIN - 1}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": None}, "payload"),
        ({"payload": {"when": datetime(2030, 1, 1)}}, "payload"),
        ({"payload": {"nan": float("nan")}}, "payload"),
        ({"payload": {"inf": float("inf")}}, "payload"),
        ({"payload": {"nested": {1: "int key"}}}, "payload"),
        ({"payload": {"tuple": (1, 2)}}, "payload"),
        ({"payload": {"set": {1}}}, "payload"),
        ({"payload": {"big": 2**64}}, "payload"),
        ({"payload": {"surrogate": "\ud800"}}, "payload"),
        ({"payload": {"blob": "x" * MAX_PAYLOAD_BYTES}}, "payload"),
        ({"schedule": "tomorrow"}, "schedule"),
        ({"retry": 3}, "retry"),
        ({"timeout": timedelta(0)}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": -30}, "timeout"),
        ({"soft_timeout": 0}, "soft_timeout"),
        ({"soft_timeout": timedelta(seconds=-1)}, "soft_timeout"),
        ({"timeout": timedelta(seconds=5), "soft_timeout": timedelta(seconds=5)}, "soft_timeout"),
        ({"unique": "key"}, "unique"),
        ({"created_at": datetime(2030, 1, 1)}, "created_at"),
        ({"metadata": {"k": 1}}, "metadata"),
    ],
)
def test_an_invalid_field_is_refused_with_its_name(fields: dict[str, Any], field: str) -> None:
    arguments = {"name": "noop", **fields}

    with pytest.raises(InvalidJob) as refused:
        Job(**arguments)

    assert refused.value.field == field
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: UniqueSpec(""), "unique"),
        (lambda: UniqueSpec("k", ttl=timedelta(0)), "unique"),
    ],
)
def test_an_invalid_unique_spec_is_refused_as_the_unique_field(make: Any, field: str) -> None:
    with pytest.raises(InvalidJob) as refused:
        make()

    assert refused.value.field == field


@pytest.mark.parametrize("name", ["mail\nwelcome", "tab\there", "lone \ud800", "bell\a"])
def test_a_name_with_a_character_that_cannot_be_printed_is_refused(name: str) -> None:
    with pytest.raises(InvalidJob, match="cannot be printed") as refused:
        Job(name)

    assert refused.value.field == "name"
    assert Job("mail.welcome for Zoë").name == "mail.welcome for Zoë"


def test_a_run_time_given_in_another_zone_is_kept_in_utc() -> None:
    in_berlin = datetime(2030, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))

    at = RunAt(in_berlin).at

    assert (at, at.tzinfo) == (datetime(2030, 1, 1, 12, tzinfo=UTC), UTC)


def test_schedules_reject_negative_delays_and_naive_times() -> None:
    with pytest.raises(ValueError, match="negative"):
        RunAfter(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        RunAt(datetime(2030, 1, 1))


def test_a_run_time_in_a_pytz_zone_attached_without_localize_is_refused_naming_the_fix() -> None:
    paris = PytzLikeZone("Europe/Paris")
    misread = datetime(2030, 6, 1, 9, 0, tzinfo=paris)  # 09:00+00:09 (LMT), not 09:00+02:00

    with pytest.raises(InvalidJob, match=r"Europe/Paris.*\+00:09:21.*\+02:00.*localize") as raised:
        RunAt(misread)

    assert raised.value.field == "schedule"
    assert RunAt(paris.localize(misread.replace(tzinfo=None))).at == datetime(
        2030, 6, 1, 7, tzinfo=UTC
    )


def test_max_attempts_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_queue_names_with_braces_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidQueueName, match="no braces"):
        validate_queue_name("a{b}")

    assert validate_queue_name("emails.high:1-x_y") == "emails.high:1-x_y"


def test_run_at_follows_the_schedule() -> None:
    later = NOW + timedelta(hours=1)

    assert Job("n").run_at(NOW) == NOW
    assert Job("n", schedule=RunAfter(timedelta(seconds=5))).run_at(NOW) == NOW + timedelta(
        seconds=5
    )
    assert Job("n", schedule=RunAt(later)).run_at(NOW) == later
    assert Job("n", schedule=RunAt(NOW - timedelta(days=1))).run_at(NOW) == NOW


def test_a_payload_nested_deeper_than_the_limit_is_refused_naming_it() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(MAX_PAYLOAD_DEPTH):
        inner["a"] = {}
        inner = inner["a"]
    within: dict[str, Any] = {"a": [1]}
    for _ in range(MAX_PAYLOAD_DEPTH - 2):
        within = {"a": within}

    with pytest.raises(InvalidJob, match=f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"):
        Job("t", payload=deep)
    with pytest.raises(InvalidJob, match="nested deeper"):
        Job("t", payload={"a": [[[[{"x": deep}]]]]})
    assert Job("t", payload=within).payload == within


@pytest.mark.parametrize(
    "schedule",
    [
        lambda: RunAfter(MAX_DELAY + timedelta(microseconds=1)),
        lambda: RunAt(LATEST_RUN_AT),
        lambda: RunAt(datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_a_run_time_beyond_what_the_stores_can_hold_is_refused_naming_the_limit(
    schedule: Any,
) -> None:
    with pytest.raises(InvalidJob, match=r"at most|before") as raised:
        schedule()

    assert raised.value.field == "schedule"


def test_the_longest_delay_and_latest_run_time_are_accepted() -> None:
    assert RunAfter(timedelta(0)).delay == timedelta(0)
    assert RunAfter(MAX_DELAY).delay == MAX_DELAY
    assert RunAt(LATEST_RUN_AT - timedelta(microseconds=1)).at < LATEST_RUN_AT


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


def test_a_run_at_time_whose_zone_gives_no_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RunAt(datetime(2030, 1, 1, tzinfo=_NoOffset()))


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("abc", "give a list of job ids, not the string"),
        (["ok", "not an id!"], "is not a job id"),
        (["a", "a"], "name each job once, and never the job itself"),
        (["me"], "name each job once, and never the job itself"),
        ([f"j{n}" for n in range(101)], "at most 100 jobs"),
    ],
)
def test_after_names_other_jobs_by_id(after: object, message: str) -> None:
    with pytest.raises(InvalidJob, match="'after'") as caught:
        Job("task", id="me", after=after)  # type: ignore[arg-type]

    assert message in str(caught.value)


def test_after_is_kept_as_a_tuple_and_defaults_to_none() -> None:
    assert Job("task", after=["a", "b"]).after == ("a", "b")
    assert (Job("task").after, Job("task").after_failure) == ((), AfterFailure.DEAD)
    with pytest.raises(
        InvalidJob, match=r"'after_failure'.*must be one of 'dead', 'cancel', 'run'"
    ):
        Job("task", after_failure="skip")


_TEMPLATE = Job(
    "noop",
    queue="mail",
    priority=3,
    schedule=RunAfter(timedelta(seconds=5)),
    retry=RetryPolicy(max_attempts=7),
    timeout=timedelta(seconds=30),
    soft_timeout=timedelta(seconds=20),
    unique=UniqueSpec("k"),
    metadata={"team": "a"},
    after=("earlier",),
    after_failure=AfterFailure.RUN,
)


def test_a_job_of_a_template_has_its_fields_but_the_four_given() -> None:
    job = Job.of_template(_TEMPLATE, "fresh", {"a": 1}, NOW, {"team": "b"})

    assert job == attrs.evolve(
        _TEMPLATE, id="fresh", payload={"a": 1}, created_at=NOW, metadata={"team": "b"}
    )


def test_a_job_of_a_template_without_an_id_gets_a_fresh_one() -> None:
    first, second = (Job.of_template(_TEMPLATE, None, {}, NOW, {}) for _ in range(2))

    assert first.id != second.id
    assert Job("x", id=first.id).id == first.id  # a valid id
    assert attrs.evolve(first, id="fresh") == Job.of_template(_TEMPLATE, "fresh", {}, NOW, {})


def test_a_job_of_a_template_is_a_frozen_job_like_any_other() -> None:
    job = Job.of_template(_TEMPLATE, "fresh", {"a": 1}, NOW, {})

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.name = "other"  # type: ignore[misc]
    assert type(job) is Job
    assert pickle.loads(pickle.dumps(job)) == job


@pytest.mark.parametrize(
    ("fresh", "field"),
    [
        ({"payload": {"set": {1}}}, "payload"),
        ({"payload": [1]}, "payload"),
        ({"job_id": "white space"}, "id"),
        ({"job_id": 5}, "id"),
        ({"created_at": datetime(2030, 1, 1)}, "created_at"),
        ({"created_at": "2030-01-01"}, "created_at"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"job_id": "earlier"}, "after"),
        ({"payload": [1], "job_id": "white space"}, "payload"),
    ],
)
def test_a_job_of_a_template_refuses_what_job_refuses(fresh: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "job_id": "fresh",
        "payload": {},
        "created_at": NOW,
        "metadata": {},
        **fresh,
    }
    with pytest.raises(InvalidJob) as built:
        attrs.evolve(
            _TEMPLATE,
            id=values["job_id"],
            payload=values["payload"],
            created_at=values["created_at"],
            metadata=values["metadata"],
        )

    with pytest.raises(InvalidJob) as refused:
        Job.of_template(_TEMPLATE, **values)

    assert (refused.value.field, str(refused.value)) == (field, str(built.value))


def test_a_job_takes_its_timeouts_in_seconds_as_its_errors_and_dispatch_say() -> None:
    job = Job("n", timeout=60, soft_timeout=1.5)

    assert (job.timeout, job.soft_timeout) == (timedelta(minutes=1), timedelta(seconds=1.5))


def _registered(**options: Any) -> None:
    import foundry  # noqa: PLC0415

    foundry.JobRegistry().job(name="shown", **options)(lambda: None)


def _dispatched(**options: Any) -> None:
    import foundry  # noqa: PLC0415

    registry = foundry.JobRegistry()
    registry.job(name="shown")(lambda: None)
    with foundry.connect("memory://") as fx:
        fx.dispatcher(registry).dispatch("shown", {}, **options)


@pytest.mark.parametrize(
    ("make", "shown"),
    [
        (lambda: _registered(timeout=0), "0 s must be a positive duration"),
        (
            lambda: _registered(timeout=5, soft_timeout=7.5),
            "7.5 s must be shorter than the hard timeout 5 s",
        ),
        (lambda: UniqueSpec("k", ttl=timedelta(0)), "ttl 0 s must be a positive duration"),
        (lambda: _dispatched(delay=-1), "delay must not be negative, got -1 s"),
        (lambda: _dispatched(delay=timedelta(days=40_000)), "a delay of 3456000000 s is too long"),
    ],
    ids=["timeout", "soft_timeout", "unique_ttl", "negative_delay", "long_delay"],
)
def test_a_bad_duration_is_named_in_seconds_as_the_api_takes_it(make: Any, shown: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        make()

    assert shown in str(raised.value)
    assert "datetime" not in str(raised.value)
