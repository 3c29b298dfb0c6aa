"""``foundry schedules``: list, run, pause, resume and forget, in-process on a memory queue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.registry import JobRegistry
from foundry.application.schedules.scheduler import Scheduler
from foundry.domain import UniqueSpec
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Settings
from foundry.ports import ScheduleEntry, ScheduleListing
from tests.cli_support import container_for, invoke
from tests.e2e.schedule_apps import QUEUE, registry

APP = ("--app", "tests.e2e.schedule_apps:registry")


def started() -> tuple[MemoryQueue, ManualClock]:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    Scheduler(queue, registry, ahead=timedelta(0)).step()
    clock.advance(timedelta(seconds=1))
    Scheduler(queue, registry, ahead=timedelta(0)).step()
    return queue, clock


def test_list_shows_expression_zone_next_ticks_last_tick_and_its_jobs_state() -> None:
    queue, clock = started()

    result = invoke(container_for(queue, clock), "schedules", "list", *APP)

    assert result.exit_code == 0, result.output
    assert "daily-report" in result.output
    assert "0 6 * * *" in result.output
    assert "Europe/Berlin" in result.output
    assert "2030-01-01 05:00:00" in result.output  # 06:00 Berlin in UTC
    assert "2030-01-01 00:00:01" in result.output  # every-second's last tick
    assert "ready" in result.output


def test_list_says_a_declared_schedule_no_scheduler_fires_is_stalled() -> None:
    queue, clock = started()
    clock.advance(timedelta(minutes=1))  # no worker stepped since

    result = invoke(container_for(queue, clock), "schedules", "list", *APP)

    assert result.exit_code == 0, result.output
    assert "stalled (no worker fired its tick" in " ".join(result.output.split())


def test_run_enqueues_one_job_now_outside_the_ticks() -> None:
    queue, clock = started()
    before = queue.stats(QUEUE).ready

    result = invoke(container_for(queue, clock), "schedules", "run", "daily-report", *APP)

    assert result.exit_code == 0, result.output
    assert "for schedule daily-report in queue ticks" in result.output
    assert queue.stats(QUEUE).ready == before + 1


def test_each_run_is_a_new_job_unless_a_job_id_names_it() -> None:
    queue, clock = started()
    container = container_for(queue, clock)
    before = queue.stats(QUEUE).ready

    runs = [invoke(container, "schedules", "run", "daily-report", *APP) for _ in range(2)]
    named = [
        invoke(container, "schedules", "run", "daily-report", "--job-id", "report-now", *APP)
        for _ in range(2)
    ]

    assert [run.exit_code for run in (*runs, *named)] == [0] * 4
    ids = {run.stdout.split()[1] for run in runs}
    assert len(ids) == 2
    assert "enqueued report-now for schedule daily-report" in named[0].stdout
    record = queue.get("report-now", QUEUE)
    assert record is not None
    assert record.job.metadata["schedule"] == "daily-report"  # as its ticks' jobs, no tick
    said = " ".join(named[1].stderr.split())
    assert "job report-now of queue ticks is stored already (ready); nothing enqueued" in said
    assert queue.stats(QUEUE).ready == before + 3


def test_run_refuses_a_job_id_no_job_can_have() -> None:
    queue, clock = started()

    result = invoke(
        container_for(queue, clock), "schedules", "run", "daily-report", "--job-id", "a b", *APP
    )

    assert result.exit_code == 2
    assert "is not a job id" in result.output


def test_pause_and_resume_a_schedule() -> None:
    queue, clock = started()
    container = container_for(queue, clock)

    paused = invoke(container, "schedules", "pause", "every-second", *APP)
    listed = invoke(container, "schedules", "list", *APP)
    resumed = invoke(container, "schedules", "resume", "every-second", *APP)

    assert paused.exit_code == 0, paused.output
    assert "paused" in listed.output
    assert resumed.exit_code == 0, resumed.output
    assert "next tick 2030-01-01 00:00:02" in resumed.output
    states = {state.name: state for state in queue.schedule_states().states}
    assert not states["every-second"].paused


def test_an_unknown_schedule_name_is_refused_naming_the_declared_ones() -> None:
    queue, clock = started()

    result = invoke(container_for(queue, clock), "schedules", "pause", "nope", *APP)

    assert result.exit_code == 2
    assert "no schedule 'nope' in the app (declared: daily-report, every-second)" in result.output


def test_forget_removes_an_orphans_state() -> None:
    queue, clock = started()
    queue.orphan(QUEUE, ["daily-report"])

    result = invoke(
        container_for(queue, clock), "schedules", "forget", "daily-report", "--queue", QUEUE
    )

    assert result.exit_code == 0, result.output
    assert [state.name for state in queue.schedule_states().states] == ["every-second"]


def test_schedule_is_an_alias_of_schedules_that_help_does_not_list_twice() -> None:
    queue, clock = started()
    container = container_for(queue, clock)

    listed = invoke(container, "schedule", "list", *APP)
    overview = invoke(container, "--help")

    assert listed.exit_code == 0, listed.output
    assert "every-second" in listed.stdout
    lines = overview.stdout.splitlines()
    command_names = [line.split()[0] for line in lines if line.startswith("  ") and line.strip()]
    assert "schedules" in command_names
    assert "schedule" not in command_names


@pytest.mark.parametrize("command", [("run", "daily-report"), ("run-forever",)])
def test_run_and_run_forever_on_a_private_memory_queue_are_refused_as_the_jobs_would_vanish(
    command: tuple[str, ...],
) -> None:
    container = build_container(Settings())

    result = invoke(container, "schedules", *command, *APP)

    assert result.exit_code == 2
    assert "QUEUE_DRIVER=redis" in result.stderr
    assert "enqueued" not in result.stdout


def test_list_on_a_private_memory_queue_says_why_no_state_is_stored() -> None:
    result = invoke(build_container(Settings()), "schedules", "list", *APP)

    assert result.exit_code == 0, result.output
    assert "QUEUE_DRIVER=redis" in result.stderr


def test_list_shows_a_schedule_moved_to_another_queue_once_per_queue() -> None:
    queue, clock = started()
    earlier = ScheduleEntry("daily-report", "zz-old", "0 6 * * * (Europe/Berlin)", clock.now())
    queue.sync_schedules([earlier], redefine=False)  # an earlier release's queue

    result = invoke(container_for(queue, clock), "schedules", "list", *APP)

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "daily-report" in line]
    assert len(rows) == 2, result.stdout
    assert "active" in rows[0]
    assert "orphaned (not in the app)" in rows[1]
    assert "zz-old" in rows[1]


skipping = JobRegistry()


@skipping.periodic(cron="0 3 * * *", overlap="skip", name="nightly-sync")
@skipping.job(name="sync", queue=QUEUE)
def sync() -> None:
    """A job that must not run twice at once."""


def test_resume_of_a_schedule_that_is_not_paused_changes_nothing() -> None:
    queue, clock = started()
    clock.advance(timedelta(seconds=10))  # the schedulers are down: a tick waits to catch up
    before = {state.name: state.next_at for state in queue.schedule_states().states}

    result = invoke(container_for(queue, clock), "schedules", "resume", "every-second", *APP)

    assert result.exit_code == 0, result.output
    assert "every-second is not paused; nothing changed" in result.output
    after = {state.name: state.next_at for state in queue.schedule_states().states}
    assert after == before


unique_handler = JobRegistry()


@unique_handler.periodic(cron="0 3 * * *", name="nightly-export")
@unique_handler.job(name="export", queue=QUEUE, unique=UniqueSpec("export"))
def export() -> None:
    """A handler whose jobs hold a unique key."""


@pytest.mark.parametrize(
    ("app", "name", "said_again"),
    [
        ("skipping", "nightly-sync", "overlap='skip'"),
        ("unique_handler", "nightly-export", "holds the unique key 'export'; nothing enqueued"),
    ],
)
def test_a_run_while_the_schedules_job_is_pending_enqueues_nothing_and_says_why(
    app: str, name: str, said_again: str
) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    container = container_for(queue, clock)
    options = ("--app", f"{__name__}:{app}")

    first = invoke(container, "schedules", "run", name, *options)
    again = invoke(container, "schedules", "run", name, *options)

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    said = " ".join(again.stderr.split())
    assert said_again in said
    assert "nothing enqueued" in said
    assert "enqueued sch" not in again.stdout
    assert queue.stats(QUEUE).ready == 1


committing = JobRegistry(after_commit=True)


@committing.periodic(cron="0 3 * * *", name="nightly-cleanup")
@committing.job(name="cleanup", queue=QUEUE)
def cleanup() -> None:
    """A handler of an app whose dispatches wait for the database's commit."""


def test_run_enqueues_for_an_app_dispatching_after_commit_as_no_transaction_is_open() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)

    result = invoke(
        container_for(queue, clock),
        "schedules",
        "run",
        "nightly-cleanup",
        "--app",
        f"{__name__}:committing",
    )

    assert result.exit_code == 0, result.output
    assert queue.stats(QUEUE).ready == 1


class PausedAfterListing(MemoryQueue):
    """A memory queue where another operator pauses every schedule right after a listing
    of them is read: the moment between a look at a schedule and an action on it."""

    def schedule_states(self) -> ScheduleListing:
        """The states as they were; each is paused when this returns."""
        listing = super().schedule_states()
        for state in listing.states:
            self.pause_schedule(state.queue, state.name)
        return listing


def test_resume_leaves_the_schedule_running_whatever_a_listing_showed_a_moment_before() -> None:
    clock = ManualClock()
    queue = PausedAfterListing(clock)
    Scheduler(queue, registry, ahead=timedelta(0)).step()

    result = invoke(container_for(queue, clock), "schedules", "resume", "every-second", *APP)

    assert result.exit_code == 0, result.output
    states = {state.name: state.paused for state in MemoryQueue.schedule_states(queue).states}
    assert states["every-second"] is False


def test_list_without_the_app_shows_the_stored_schedules_as_the_dashboard_does() -> None:
    queue, clock = started()
    queue.pause_schedule(QUEUE, "daily-report")

    result = invoke(container_for(queue, clock), "schedules", "list")

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "paused" in rows["daily-report"]
    assert "active" in rows["every-second"]
    assert "orphaned" not in result.stdout
