"""Schedules on a PostgreSQL session whose time zone is not UTC: the port still gives instants
in UTC, as every backend does, so the CLI's "(UTC)" columns say what they show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.schedules.scheduler import Scheduler
from tests.backends import FixtureLookup, postgres_queue
from tests.cli_support import container_for, invoke
from tests.e2e.schedule_apps import registry

pytestmark = pytest.mark.postgres

NEW_YORK = "options=-c%20timezone%3DAmerica/New_York"


def test_a_session_in_new_york_still_reads_schedules_in_utc(
    request: pytest.FixtureRequest,
) -> None:
    def fixture(name: str) -> object:
        value = request.getfixturevalue(name)
        return f"{value}?{NEW_YORK}" if name == "postgres_url" else value

    lookup: FixtureLookup = fixture
    clock = ManualClock()
    queue = postgres_queue(lookup, clock)
    Scheduler(queue, registry, ahead=timedelta(0)).step()
    clock.advance(timedelta(seconds=1))
    Scheduler(queue, registry, ahead=timedelta(0)).step()

    states = queue.schedule_states().states
    poll = queue.poll(["ticks"], 10, timedelta(days=1))
    listed = invoke(container_for(queue, clock), "schedules", "list", "--app", APP)

    moments = [poll.now, *(item.due_from for item in poll.due)]
    moments += [m for s in states for m in (s.next_at, s.last_tick) if m is not None]
    assert [moment.utcoffset() for moment in moments] == [timedelta(0)] * len(moments)
    assert clock.now() == datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert listed.exit_code == 0, listed.output
    assert "2030-01-01 00:00:01" in listed.stdout  # every-second's last tick, in UTC
    assert "2029-12-31" not in listed.stdout


APP = "tests.e2e.schedule_apps:registry"
