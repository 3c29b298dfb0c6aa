"""A total-queue check in the style of Jepsen's: what went in must come out, once.

After a scenario has drained its queue, ``check`` compares the ledger (what the producer was
told, what the handlers saw) with the queue's final records and running totals:

* lost: acknowledged by ``enqueue`` but gone, or still pending/running after the drain;
* unexpected: completed, dead or started, yet never enqueued by the producer;
* duplicated: completions the queue counted beyond one per completed job;
* attempts: a finished job's ``attempts`` differs from the starts its handlers recorded (and
  from what the lapses of a SIGKILLed worker's leases explain exactly);
* dead: a dead job without the reason the scenario injected for it;
* overlaps (optional): two executions of one job running at the same time.

Re-runs (a job whose handler returned more than once, because a completion was lost or a lease
expired) are reported but are not failures: at-least-once execution is the promise.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from foundry.application.pool.leases import FENCED
from foundry.domain import JobState
from foundry.ports.queue_types import UNSTARTED_LAPSES_MAX, JobRecord

_TERMINAL = (JobState.COMPLETED, JobState.DEAD)
#: The warning a pool logs when it gives a lease up: fenced (it could not renew in time) or
#: lost (a renew found the queue no longer held it for this worker).
_GIVEN_UP = re.compile(rf"abandoned job (\S+) \((?:{re.escape(FENCED)}|lease lost: )")
#: The warning a pool logs when the queue refuses a write of a job's end as stale: the lease
#: lapsed while the write waited (Redis down, the parent stopped), so the pool gave it up too.
_REFUSED_STALE = re.compile(r"lease '[^']*' on job '([^']+)' is stale: ")


def given_up(logs: Iterable[str]) -> Counter[str]:
    """Job id -> how often the workers whose ``logs`` these are gave its lease up: abandoned
    (fenced, or lost), or a write of its end refused as stale."""
    texts = list(logs)
    stale = (job for text in texts for job in _REFUSED_STALE.findall(text))
    return Counter(job for text in texts for job in _GIVEN_UP.findall(text)) + Counter(stale)


@attrs.frozen
class KilledWorker:
    """The leases a SIGKILLed worker held, as the queue recorded them once the worker was dead.

    Their lapses keep the attempts of ``counted`` (started, as far as the queue knew, or
    claimed to start at once) and give back those of ``unstarted`` (held ahead, no start
    reported). The ledger may disagree either way: a child cut off between getting a job and
    its handler's first line recorded no start; a start since the worker's last write was
    recorded but never reported. Its children's starts carry ``ppid == pid``.
    """

    pid: int
    counted: frozenset[str]
    unstarted: frozenset[str]

    def offset(self, job_id: str, ran: int) -> int:
        """Attempts minus recorded starts of a job it held that its children started ``ran``
        times: the attempt its lapse kept, less those runs."""
        return int(job_id in self.counted) - ran


@attrs.frozen
class Expectations:
    """What a scenario allows: injected deaths, and tolerated differences it can explain."""

    dead: Mapping[str, str] = attrs.field(factory=dict)
    """Job id -> a substring its dead letter's reason must contain."""
    allowed_dead_reasons: tuple[str, ...] = ()
    """Reasons any job may die with (a soak that exhausts attempts by faults: "lease lost")."""
    check_overlaps: bool = False
    """Fail when two executions of one job overlap in time (fencing scenarios)."""
    spare_attempts: int = 0
    """How many claims in total may have no recorded start (a parent stopped between claiming
    and handing the job to a child); every other job's attempts must equal its starts."""
    unreported_starts: int = 0
    """How many recorded starts in total may have no attempt counted (a worker died after
    handing a job held ahead to a child, before that start reached the queue: the lapse gave
    the attempt back), at most ``UNSTARTED_LAPSES_MAX`` of one job."""
    killed: tuple[KilledWorker, ...] = ()
    """Workers SIGKILLed holding leases: each of their held jobs' attempts must differ from its
    recorded starts by exactly what ``KilledWorker.offset`` says."""
    fenced: Mapping[str, int] = attrs.field(factory=dict)
    """Job id -> how often a worker gave its lease up (``given_up``: fenced, or lost): each may
    have left an attempt without a start (the child was killed before its handler began, or
    never got the job) or a start without an attempt (a job held ahead ran, its start not yet
    reported: the lease's lapse gave the attempt back, Q6)."""


@attrs.frozen
class Execution:
    """One handler run of one job in one child, as the ledger saw it."""

    job: str
    pid: int
    start: float
    last_seen: float
    finished: bool


@attrs.define
class Report:
    """Counts and problems of one check; ``ok`` when there are no problems."""

    attempted: int = 0
    acknowledged: int = 0
    indeterminate: int = 0
    refused: int = 0
    completed: int = 0
    dead: int = 0
    lost: list[str] = attrs.field(factory=list)
    unexpected: list[str] = attrs.field(factory=list)
    duplicated: int = 0
    reruns: int = 0
    starts: int = 0
    given_up: int = 0
    """Jobs whose attempts differ from their starts by what leases given up explain."""
    problems: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def summary(self) -> str:
        """One line of counts, then one line per problem (the first 20)."""
        head = (
            f"attempted={self.attempted} acknowledged={self.acknowledged} "
            f"indeterminate={self.indeterminate} refused={self.refused} "
            f"completed={self.completed} dead={self.dead} lost={len(self.lost)} "
            f"unexpected={len(self.unexpected)} duplicated={self.duplicated} "
            f"reruns={self.reruns} starts={self.starts} given_up={self.given_up} "
            f"problems={len(self.problems)}"
        )
        kinds = Counter(problem.partition(":")[0] for problem in self.problems)
        by_kind = f"  problems by kind: {dict(kinds)}" if kinds else ""
        shown = [f"  - {problem}" for problem in self.problems[:20]]
        return "\n".join([head, *([by_kind] if by_kind else []), *shown])


def executions(events: Iterable[Mapping[str, Any]]) -> list[Execution]:
    """Handler runs rebuilt from start/tick/end events (a child runs one job at a time)."""
    runs: list[dict[str, Any]] = []
    open_by_pid: dict[int, dict[str, Any]] = {}
    for event in events:
        kind, pid = event["ev"], event.get("pid")
        if kind == "start":
            run = {"job": event["job"], "pid": pid, "start": event["t"], "last": event["t"]}
            run["finished"] = False
            open_by_pid[pid] = run
            runs.append(run)
        elif kind in ("tick", "end") and pid in open_by_pid:
            run = open_by_pid[pid]
            run["last"] = event["t"]
            if kind == "end":
                run["finished"] = True
                del open_by_pid[pid]
    return [Execution(r["job"], r["pid"], r["start"], r["last"], r["finished"]) for r in runs]


def overlapping(runs: Iterable[Execution]) -> list[tuple[Execution, Execution]]:
    """Pairs of runs of the same job whose [start, last seen] intervals intersect."""
    by_job: dict[str, list[Execution]] = defaultdict(list)
    for run in runs:
        by_job[run.job].append(run)
    pairs = []
    for job_runs in by_job.values():
        ordered = sorted(job_runs, key=lambda run: run.start)
        for before, after in itertools.pairwise(ordered):
            if after.start < before.last_seen:
                pairs.append((before, after))
    return pairs


def check(
    events: list[Mapping[str, Any]],
    final: Mapping[str, JobRecord | None],
    *,
    completed_total: int,
    expect: Expectations | None = None,
) -> Report:
    """Compare the ledger with the drained queue; ``final`` holds every job id in the ledger."""
    expect = expect or Expectations()
    report = Report()
    acknowledged = _producer_view(events, report)
    runs = executions(events)
    starts = Counter(run.job for run in runs)
    report.starts = sum(starts.values())
    report.reruns = sum(1 for n in Counter(r.job for r in runs if r.finished).values() if n > 1)
    _check_outcomes(final, acknowledged, report)
    _check_unexpected(events, final, starts, report)
    report.duplicated = completed_total - report.completed
    if report.duplicated:
        report.problems.append(
            f"the queue counted {completed_total} completions for {report.completed} jobs"
        )
    _check_attempts(final, starts, _offsets(events, expect.killed), expect, report)
    _check_dead(final, expect, report)
    if expect.check_overlaps:
        for before, after in overlapping(runs):
            report.problems.append(f"job {before.job} ran twice at once: {before} and {after}")
    return report


def _producer_view(events: Iterable[Mapping[str, Any]], report: Report) -> set[str]:
    tried: set[str] = set()
    acknowledged: set[str] = set()
    failed: set[str] = set()
    for event in events:
        kind = event["ev"]
        if kind == "enqueue_try":
            tried.add(event["job"])
        elif kind == "enqueued":
            acknowledged.add(event["job"])
        elif kind == "duplicate":
            report.refused += 1
        elif kind == "enqueue_error":
            failed.add(event["job"])
    report.attempted = len(tried)
    report.acknowledged = len(acknowledged)
    report.indeterminate = len(failed - acknowledged)
    return acknowledged


def _check_outcomes(
    final: Mapping[str, JobRecord | None], acknowledged: set[str], report: Report
) -> None:
    for job_id, record in sorted(final.items()):
        state = None if record is None else record.state
        report.completed += state is JobState.COMPLETED
        report.dead += state is JobState.DEAD
        if job_id in acknowledged and state not in _TERMINAL:
            report.lost.append(job_id)
            where = "gone" if state is None else f"still {state.value} after the drain"
            report.problems.append(f"lost: job {job_id} was acknowledged and is {where}")


def _check_unexpected(
    events: Iterable[Mapping[str, Any]],
    final: Mapping[str, JobRecord | None],
    starts: Counter[str],
    report: Report,
) -> None:
    tried = {event["job"] for event in events if event["ev"] == "enqueue_try"}
    seen = set(starts) | {job_id for job_id, record in final.items() if record is not None}
    for job_id in sorted(seen - tried):
        report.unexpected.append(job_id)
        report.problems.append(f"unexpected: job {job_id} ran or exists but was never enqueued")


def _check_attempts(
    final: Mapping[str, JobRecord | None],
    starts: Counter[str],
    offsets: Counter[str],
    expect: Expectations,
    report: Report,
) -> None:
    spare, unreported = expect.spare_attempts, expect.unreported_starts
    for job_id, record in sorted(final.items()):
        if record is None or record.state not in _TERMINAL:
            continue
        missing = record.attempts - starts[job_id] - offsets[job_id]
        if 0 < abs(missing) <= expect.fenced.get(job_id, 0):
            report.given_up += 1
            continue
        if 0 < missing <= spare:
            spare -= missing
            continue
        if 0 < -missing <= min(unreported, UNSTARTED_LAPSES_MAX):
            unreported += missing
            continue
        if missing:
            explained = f" and {offsets[job_id]:+d} from lapses" if offsets[job_id] else ""
            report.problems.append(
                f"attempts: job {job_id} has attempts={record.attempts} "
                f"but {starts[job_id]} recorded starts{explained}"
            )


def _offsets(events: list[Mapping[str, Any]], killed: Iterable[KilledWorker]) -> Counter[str]:
    """Per job, the attempts the lapses of killed workers' leases explain beyond (or, when
    negative, short of) its recorded starts."""
    offsets: Counter[str] = Counter()
    for worker in killed:
        ran = Counter(
            e["job"] for e in events if e["ev"] == "start" and e.get("ppid") == worker.pid
        )
        for job_id in worker.counted | worker.unstarted:
            offsets[job_id] += worker.offset(job_id, ran[job_id])
    return offsets


def _check_dead(
    final: Mapping[str, JobRecord | None], expect: Expectations, report: Report
) -> None:
    for job_id, wanted in sorted(expect.dead.items()):
        record = final.get(job_id)
        if record is None or record.state is not JobState.DEAD:
            report.problems.append(f"dead: job {job_id} should have died ({wanted!r}) but did not")
    for job_id, record in sorted(final.items()):
        if record is None or record.state is not JobState.DEAD:
            continue
        reason = record.reason or ""
        wanted = expect.dead.get(job_id)
        allowed = (wanted,) if wanted is not None else expect.allowed_dead_reasons
        if not any(fragment in reason for fragment in allowed):
            report.problems.append(f"dead: job {job_id} died with {reason!r}, expected {allowed}")
