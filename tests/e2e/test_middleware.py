"""Middleware through ``foundry work --app``: which hook runs where, in which order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from tests.cli_support import container_for, invoke
from tests.e2e.apps import LEDGER
from tests.e2e.middleware_app import QUEUE

Ran = tuple[list[tuple[str, int]], MemoryQueue]


def _run_app(tmp_path: Path, app: str = "with_jobs") -> Ran:
    """``foundry work --burst`` of the middleware app (``app``, its function that dispatches
    the jobs) with one child: the ledger's lines as (text, pid), and the queue."""
    ledger = tmp_path / "ledger"
    ledger.touch()
    queue = MemoryQueue(SystemClock())
    container = container_for(queue, SystemClock())

    result = invoke(
        container,
        "work",
        "--app",
        f"tests.e2e.middleware_app:{app}",
        "--burst",
        "--concurrency",
        "1",
        "--no-scheduler",
        env={LEDGER: str(ledger)},
    )

    assert result.exit_code == 0, result.output
    lines = [line.rsplit(" ", 1) for line in ledger.read_text().splitlines()]
    return [(text, int(pid)) for text, pid in lines], queue


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    return _run_app(tmp_path_factory.mktemp("middleware"))


def _in_child(ran: Ran) -> list[str]:
    return [text for text, pid in ran[0] if pid != os.getpid()]


def test_job_hooks_wrap_the_handler_first_registered_outermost(
    ran: Ran,
) -> None:
    child = _in_child(ran)

    start = child.index("outer before_job mw.echo")
    assert child[start : start + 5] == [
        "outer before_job mw.echo",
        "inner before_job mw.echo",
        "handler echo mw.echo:mw.echo",
        "inner after_job mw.echo:ok",
        "outer after_job mw.echo:ok",
    ]


def test_a_producer_hook_adds_metadata_the_handler_sees(
    ran: Ran,
) -> None:
    assert "handler echo mw.echo:mw.echo" in _in_child(ran)


def test_child_hooks_run_in_the_child_after_fork_and_before_exit(
    ran: Ran,
) -> None:
    lines, _ = ran
    child = _in_child(ran)
    pids = {pid for text, pid in lines if "after_fork" in text or text.startswith("handler")}

    assert child[:2] == ["outer after_fork -", "inner after_fork -"]
    assert child[-2:] == ["outer before_exit -", "inner before_exit -"]
    assert len(pids) == 1
    assert pids != {os.getpid()}


def test_a_failed_handler_goes_through_on_error_and_the_sink(
    ran: Ran,
) -> None:
    child = _in_child(ran)

    start = child.index("handler boom -")
    assert child[start : start + 6] == [
        "handler boom -",
        "sink captured ValueError:mw.boom:1",
        "outer on_error ValueError",
        "inner on_error ValueError",
        "inner after_job mw.boom:ValueError",
        "outer after_job mw.boom:ValueError",
    ]


def test_a_hook_that_raises_fails_the_job_without_running_the_handler(
    ran: Ran,
) -> None:
    child = _in_child(ran)
    _, queue = ran

    assert "handler refused -" not in child
    assert "outer after_job mw.refused:PermanentFailure" in child
    assert "sink captured PermanentFailure:mw.refused:1" in child
    dead = {letter.job.name: letter for letter in queue.dead(QUEUE)}
    assert set(dead) == {"mw.boom", "mw.refused"}
    assert "refused by the gate middleware" in dead["mw.refused"].errors[-1].message


def test_parent_events_reach_the_middleware_in_the_parent(
    ran: Ran,
) -> None:
    lines, _ = ran
    parent = [text for text, pid in lines if pid == os.getpid()]

    assert "outer job_started mw.echo" in parent
    assert "inner job_finished mw.echo:completed" in parent
    assert "outer job_finished mw.boom:dead" in parent
    assert "outer job_finished mw.refused:dead" in parent


def test_a_child_killed_mid_job_reaches_the_error_sink_from_the_parent(tmp_path: Path) -> None:
    lines, queue = _run_app(tmp_path, "with_a_killed_job")

    parent = [text for text, pid in lines if pid == os.getpid()]
    assert "sink captured WorkerLost:mw.killed:1" in parent
    assert "outer job_finished mw.killed:dead" in parent
    [letter] = queue.dead(QUEUE)
    assert letter.errors[-1].signal == 9
