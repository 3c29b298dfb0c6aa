"""Declaring periodic schedules on the registry: stable names, defaults from the handler, and
bad input refused at declaration with a message naming the schedule and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import foundry


def make_registry() -> foundry.JobRegistry:
    registry = foundry.JobRegistry()

    @registry.job(name="report", queue="reports", priority=3)
    def report(region: str = "eu") -> None:
        return None

    return registry


def test_periodic_on_a_handler_declares_a_schedule_named_after_it() -> None:
    registry = foundry.JobRegistry()

    @registry.periodic(cron="*/5 * * * *", tz="Europe/Berlin")
    def cleanup() -> None:
        return None

    (schedule,) = registry.schedules()
    assert schedule.name == schedule.handler == registry.name_of(cleanup)
    assert schedule.definition == "*/5 * * * * (Europe/Berlin)"
    assert schedule.queue == "default"
    assert schedule.recurrence.next_after(datetime(2030, 1, 1, 0, 1, tzinfo=UTC)) == datetime(
        2030, 1, 1, 0, 5, tzinfo=UTC
    )


def test_schedule_declares_several_schedules_of_one_handler_with_their_payloads() -> None:
    registry = make_registry()

    registry.schedule("report-eu", "report", every=timedelta(minutes=10), payload={"region": "eu"})
    registry.schedule("report-us", "report", cron="@hourly", payload={"region": "us"}, priority=9)

    eu, us = registry.schedules()
    assert (eu.name, eu.payload, eu.queue, eu.priority) == (
        "report-eu",
        {"region": "eu"},
        "reports",
        3,
    )
    assert (us.name, us.payload, us.priority) == ("report-us", {"region": "us"}, 9)
    assert us.definition == "@hourly (UTC)"
    assert eu.definition == "every 0:10:00"


def test_the_same_declaration_twice_is_kept_once_but_a_clash_is_refused() -> None:
    registry = make_registry()
    registry.schedule("nightly", "report", cron="0 3 * * *")
    registry.schedule("nightly", "report", cron="0 3 * * *")

    with pytest.raises(foundry.InvalidSchedule, match=r"'nightly'.*give one of them name="):
        registry.schedule("nightly", "report", cron="0 4 * * *")
    assert len(registry.schedules()) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, r"schedule 'bad': cron '61 \* \* \* \*' is invalid .*5 fields"),
        ({"cron": "* * *"}, r"schedule 'bad': cron '\* \* \*' is not a cron expression; give 5"),
        ({"cron": "@reboot"}, r"'@reboot' is not a cron expression; give .*@hourly"),
        ({"cron": "0 0 30 2 *"}, r"schedule 'bad': cron '0 0 30 2 \*' is invalid"),
        (
            {"cron": "0 * * * *", "tz": "Mars/Olympus"},
            r"unknown time zone 'Mars/Olympus'; give an IANA",
        ),
        (
            {"cron": "0 6 * * *", "tz": "localtime"},
            r"tz='localtime' is each host's own zone.*name the zone, e.g. 'Europe/Berlin'",
        ),
        ({"every": timedelta(0)}, r"schedule 'bad': every=.* must be a positive timedelta"),
        ({"every": -5}, r"every=-5 must be a positive timedelta"),
        ({"every": float("nan")}, r"every=nan must be a positive timedelta"),
        ({"every": float("inf")}, r"every=inf must be a positive timedelta"),
        (
            {"every": timedelta(days=1), "tz": "Europe/Berlin"},
            r"tz='Europe/Berlin' applies to cron= only.*cron='0 6 \* \* \*', tz=",
        ),
        ({"every": 60, "tz": "Mars/Olympus"}, r"tz='Mars/Olympus' applies to cron= only"),
        ({"cron": "* * * * *", "jitter": float("nan")}, r"jitter=nan must be a timedelta >= 0"),
        ({}, r"give exactly one of cron="),
        ({"cron": "* * * * *", "every": 5}, r"give exactly one of cron="),
        ({"cron": "* * * * *", "catch_up": "sometimes"}, r"catch_up='sometimes' is not a policy"),
        ({"cron": "* * * * *", "overlap": "never"}, r"overlap='never': give 'allow' or 'skip'"),
        ({"cron": "* * * * *", "jitter": -1}, r"jitter=-1 must be a timedelta >= 0"),
        ({"cron": "* * * * *", "queue": "a{b}"}, r"schedule 'bad':.*not a valid queue name"),
        ({"cron": "* * * * *", "priority": 999}, r"priority 999 must be an int from -255 to 255"),
        ({"cron": "* * * * *", "payload": {"city": "x"}}, r"takes no argument 'city'"),
        ({"cron": "* * * * *", "payload": {"region": float("nan")}}, r"payload.region is nan"),
        ({"cron": "* * * * *", "payload": {"region": b"eu"}}, r"payload.region is a bytes"),
        ({"cron": "* * * * *", "payload": "eu"}, r"payload= must be a dict of the handler's"),
    ],
)
def test_bad_input_is_refused_at_declaration_naming_the_schedule_and_the_fix(
    options: dict[str, object], message: str
) -> None:
    registry = make_registry()

    with pytest.raises(foundry.InvalidSchedule, match=message):
        registry.schedule("bad", "report", **options)  # type: ignore[arg-type]
    assert registry.schedules() == []


def test_a_schedule_naming_an_unknown_handler_is_refused() -> None:
    registry = make_registry()

    with pytest.raises(
        foundry.InvalidSchedule,
        match=r"schedule 'typo': handler 'reprot' is not registered; decorate",
    ):
        registry.schedule("typo", "reprot", cron="* * * * *")


def test_a_bad_periodic_decorator_fails_when_the_module_is_imported() -> None:
    registry = foundry.JobRegistry()

    with pytest.raises(foundry.InvalidSchedule, match="unknown time zone"):

        @registry.periodic(cron="0 9 * * *", tz="Europe/Berlinn", name="morning")
        def morning() -> None:
            return None


def test_every_in_utc_may_say_so() -> None:
    registry = make_registry()

    registry.schedule("utc", "report", every=60, tz="UTC")

    assert registry.schedules()[0].definition == "every 0:01:00"


def test_job_options_given_after_periodic_are_refused_as_the_schedule_would_ignore_them() -> None:
    registry = foundry.JobRegistry()

    with pytest.raises(
        foundry.ConfigurationError, match=r"put @registry.periodic\(...\) above @registry.job"
    ):

        @registry.job(name="reports.nightly", queue="reports")
        @registry.periodic(cron="0 3 * * *")
        def nightly() -> None:
            return None


def test_a_queue_given_after_periodic_is_refused_too() -> None:
    registry = foundry.JobRegistry()

    with pytest.raises(foundry.ConfigurationError, match=r"schedule 'nightly_queue'"):

        @registry.job(queue="reports")
        @registry.periodic(cron="0 3 * * *", name="nightly_queue")
        def nightly() -> None:
            return None


def test_periodic_above_job_takes_the_jobs_name_and_queue() -> None:
    registry = foundry.JobRegistry()

    @registry.periodic(cron="0 3 * * *")
    @registry.job(name="reports.nightly", queue="reports")
    def nightly() -> None:
        return None

    (schedule,) = registry.schedules()
    assert (schedule.handler, schedule.queue) == ("reports.nightly", "reports")
    assert registry.names() == ["reports.nightly"]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"every": timedelta(days=365 * 1200)}, "every=438000 days, 0:00:00 is too long"),
        ({"every": 60, "jitter": timedelta(days=365 * 1200)}, "jitter=438000 days"),
        ({"every": 60, "jitter": 1e15}, "jitter="),
    ],
)
def test_an_every_or_jitter_beyond_what_a_job_may_be_delayed_is_refused(
    options: dict[str, object], said: str
) -> None:
    registry = make_registry()

    with pytest.raises(foundry.InvalidSchedule, match="at most 36500 days") as refused:
        registry.schedule("far", "report", **options)  # type: ignore[arg-type]

    assert said in str(refused.value)


def test_every_and_jitter_of_a_hundred_years_are_accepted() -> None:
    registry = make_registry()

    registry.schedule("century", "report", every=timedelta(days=36500), jitter=36500 * 86400)

    (schedule,) = registry.schedules()
    assert schedule.jitter == timedelta(days=36500)
