"""The oracle itself must catch what it claims to catch: fed hand-made histories."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundry.domain import Job, JobState, StaleLease
from foundry.ports.queue_types import JobRecord
from tests.faults.checker import (
    Expectations,
    KilledWorker,
    check,
    executions,
    given_up,
    overlapping,
)
from tests.faults.ledger import Ledger, complete_events

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def record(job_id: str, state: JobState, attempts: int = 1, reason: str | None = None) -> JobRecord:
    job = Job(id=job_id, name="faults.work", payload={"id": job_id})
    return JobRecord(job=job, state=state, attempts=attempts, enqueued_at=NOW, reason=reason)


def enqueued(job_id: str) -> list[dict[str, Any]]:
    return [{"ev": "enqueue_try", "job": job_id}, {"ev": "enqueued", "job": job_id}]


def ran(
    job_id: str, pid: int, start: float, end: float | None, ppid: int = 0
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"ev": "start", "job": job_id, "pid": pid, "ppid": ppid, "t": start}
    ]
    if end is not None:
        events.append({"ev": "end", "job": job_id, "pid": pid, "t": end})
    return events


def test_a_clean_history_passes_and_counts_everything() -> None:
    events = [*enqueued("a"), *enqueued("b"), *ran("a", 1, 0.0, 1.0), *ran("b", 2, 0.0, 1.0)]
    final = {"a": record("a", JobState.COMPLETED), "b": record("b", JobState.COMPLETED)}

    report = check(events, final, completed_total=2)

    assert report.ok, report.summary()
    assert (report.acknowledged, report.completed, report.starts) == (2, 2, 2)


def test_an_acknowledged_job_that_vanished_is_lost() -> None:
    events = [*enqueued("a")]

    report = check(events, {"a": None}, completed_total=0)

    assert report.lost == ["a"]
    assert not report.ok


def test_an_acknowledged_job_still_pending_after_the_drain_is_lost() -> None:
    report = check(enqueued("a"), {"a": record("a", JobState.READY, 0)}, completed_total=0)

    assert report.lost == ["a"]


def test_a_failed_enqueue_that_never_landed_is_not_lost() -> None:
    events = [{"ev": "enqueue_try", "job": "a"}, {"ev": "enqueue_error", "job": "a"}]

    report = check(events, {"a": None}, completed_total=0)

    assert report.ok, report.summary()
    assert report.indeterminate == 1


def test_a_job_nobody_enqueued_is_unexpected() -> None:
    events = [*ran("ghost", 1, 0.0, 1.0)]

    report = check(events, {"ghost": record("ghost", JobState.COMPLETED)}, completed_total=1)

    assert report.unexpected == ["ghost"]


def test_more_completions_than_completed_jobs_is_a_duplicate() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0), *ran("a", 2, 2.0, 3.0)]

    report = check(events, {"a": record("a", JobState.COMPLETED, 2)}, completed_total=2)

    assert report.duplicated == 1
    assert report.reruns == 1


def test_a_rerun_with_one_completion_is_fine() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0), *ran("a", 2, 2.0, 3.0)]

    report = check(events, {"a": record("a", JobState.COMPLETED, 2)}, completed_total=1)

    assert report.ok, report.summary()
    assert report.reruns == 1


def test_attempts_must_equal_recorded_starts() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0)]

    report = check(events, {"a": record("a", JobState.COMPLETED, 3)}, completed_total=1)

    assert any("attempts=3" in problem for problem in report.problems)


def test_spare_attempts_excuse_only_that_many_unstarted_claims() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0), *enqueued("b"), *ran("b", 1, 2.0, 3.0)]
    final = {"a": record("a", JobState.COMPLETED, 2), "b": record("b", JobState.COMPLETED, 2)}

    report = check(events, final, completed_total=2, expect=Expectations(spare_attempts=1))

    assert len(report.problems) == 1


def test_a_fenced_lease_excuses_one_unstarted_attempt_of_its_job_only() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0), *enqueued("b"), *ran("b", 1, 2.0, 3.0)]
    final = {"a": record("a", JobState.COMPLETED, 2), "b": record("b", JobState.COMPLETED, 3)}
    final["c"] = record("c", JobState.COMPLETED, 2)
    events += [*enqueued("c"), *ran("c", 1, 4.0, 5.0)]

    report = check(events, final, completed_total=3, expect=Expectations(fenced={"a": 1, "b": 1}))

    assert [problem.split()[2] for problem in report.problems] == ["b", "c"]


def test_a_given_up_lease_excuses_one_run_without_an_attempt_of_its_job_only() -> None:
    # "a" ran held ahead, its start unreported when its worker gave the lease up: the lapse
    # gave its attempt back and it ran again as attempt 1. "b" has the same history, unexplained.
    events = [*enqueued("a"), *ran("a", 1, 0.0, None), *ran("a", 2, 5.0, 6.0)]
    events += [*enqueued("b"), *ran("b", 1, 0.0, None), *ran("b", 2, 5.0, 6.0)]
    final = {"a": record("a", JobState.COMPLETED, 1), "b": record("b", JobState.COMPLETED, 1)}
    twice = {**final, "a": record("a", JobState.COMPLETED, 0)}

    report = check(events, final, completed_total=2, expect=Expectations(fenced={"a": 1}))
    more = check(events, twice, completed_total=2, expect=Expectations(fenced={"a": 1}))

    assert [problem.split()[2] for problem in report.problems] == ["b"]
    assert report.given_up == 1
    assert [problem.split()[2] for problem in more.problems] == ["a", "b"]


def test_given_up_reads_the_fenced_and_lost_leases_from_worker_logs() -> None:
    logs = [
        "W abandoned job j1 (fenced: its lease could not be renewed before the deadline): the "
        "queue will return it\nW abandoned job j2 (lease lost: the queue no longer holds it "
        "for this worker): the queue will return it\n",
        "W abandoned job j1 (fenced: its lease could not be renewed before the deadline): x\n"
        "W abandoned job j3 (shutdown: the queue was unreachable): the queue will return it\n",
    ]

    assert given_up(logs) == {"j1": 2, "j2": 1}


def test_given_up_counts_a_write_of_a_jobs_end_refused_as_stale() -> None:
    # A job held ahead ran, its start unreported; Redis was down longer than the lease, so its
    # completion came back stale and it ran again as the same attempt (Q6).
    stale = str(StaleLease("j4", "t-1"))
    logs = [f"W {stale}\nW abandoned job j5 (shutdown: the queue was unreachable): x\n"]

    assert given_up(logs) == {"j4": 1}


def test_unreported_starts_excuse_only_that_many_runs_without_an_attempt() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0), *ran("a", 1, 2.0, 3.0)]
    events += [*enqueued("b"), *ran("b", 1, 0.0, 1.0), *ran("b", 1, 2.0, 3.0)]
    final = {"a": record("a", JobState.COMPLETED, 1), "b": record("b", JobState.COMPLETED, 1)}

    report = check(events, final, completed_total=2, expect=Expectations(unreported_starts=1))

    assert len(report.problems) == 1


def test_a_killed_workers_leases_explain_exactly_their_kept_and_given_back_attempts() -> None:
    # Its lapses kept the attempts of "a" (its child got it, but was cut off before the handler
    # began) and "b" (it ran), and gave back those of "c" (it ran, its start unreported) and
    # "d" (never handed out); each then ran once elsewhere.
    killed = KilledWorker(7, counted=frozenset("ab"), unstarted=frozenset("cd"))
    events = [*ran("b", 8, 0.0, None, ppid=7), *ran("c", 9, 0.0, None, ppid=7)]
    for job_id in "abcd":
        events += [*enqueued(job_id), *ran(job_id, 10, 1.0, 2.0, ppid=11)]
    attempts = {"a": 2, "b": 2, "c": 1, "d": 1}
    final = {job_id: record(job_id, JobState.COMPLETED, n) for job_id, n in attempts.items()}
    one_off = {
        **final,
        "d": record("d", JobState.COMPLETED, 2),
        "a": record("a", JobState.COMPLETED),
    }

    exact = check(events, final, completed_total=4, expect=Expectations(killed=(killed,)))
    off = check(events, one_off, completed_total=4, expect=Expectations(killed=(killed,)))

    assert exact.ok, exact.summary()
    assert [problem.split()[2] for problem in off.problems] == ["a", "d"]


def test_a_dead_job_must_carry_the_injected_reason() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, None)]
    final = {"a": record("a", JobState.DEAD, reason="lease lost")}

    report = check(events, final, completed_total=0, expect=Expectations(dead={"a": "WorkerLost"}))

    assert any("died with 'lease lost'" in problem for problem in report.problems)


def test_a_job_expected_to_die_that_completed_is_reported() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, 1.0)]

    report = check(
        events,
        {"a": record("a", JobState.COMPLETED)},
        completed_total=1,
        expect=Expectations(dead={"a": "poison"}),
    )

    assert any("should have died" in problem for problem in report.problems)


def test_an_allowed_reason_excuses_any_death() -> None:
    events = [*enqueued("a"), *ran("a", 1, 0.0, None)]
    final = {"a": record("a", JobState.DEAD, reason="lease lost")}

    expect = Expectations(allowed_dead_reasons=("lease lost",))
    report = check(events, final, completed_total=0, expect=expect)

    assert report.ok, report.summary()


def test_overlapping_executions_of_one_job_are_found_using_ticks() -> None:
    events = [
        *ran("a", 1, 0.0, None),
        {"ev": "tick", "job": "a", "pid": 1, "t": 5.0},
        *ran("a", 2, 4.0, 6.0),
        *ran("b", 3, 0.0, 1.0),
        *ran("b", 3, 1.5, 2.0),
    ]

    pairs = overlapping(executions(events))

    assert [(before.pid, after.pid) for before, after in pairs] == [(1, 2)]


def test_the_ledger_keeps_lines_from_forked_writers(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record("note", text="parent")

    pid = os.fork()
    if pid == 0:
        for index in range(100):
            Ledger(ledger.path).record("note", text=f"child {index}")
        os._exit(0)
    for index in range(100):
        ledger.record("note", text=f"parent {index}")
    os.waitpid(pid, 0)

    assert len(ledger.events()) == 201


def test_the_ledger_reads_up_to_a_line_still_being_written() -> None:
    # What a reader meets when a writer appends during the read: the line's start at the end
    # of the file, then, if it read on, the line's rest as if it were a line of its own.
    lines = [b'{"ev":"note","t":1.0}\n', b'{"ev":"note","t":', b"2.0}\n"]

    assert [event["t"] for event in complete_events(lines)] == [1.0]
