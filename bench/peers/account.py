"""``python -m bench.peers.account``: where the two cores go while one system runs the peers
bench's CPU-bound workload (its ``Session``, worker command and ``spin`` bodies, Redis only).

Between the moments a tenth and nine tenths of the jobs are done, every thread's CPU is read
from ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds on a CPU and waiting for one): the
worker's parent and the processes under it, the bench's redis-server and this harness; the
machine's other processes get the rest of ``/proc/stat``'s busy time. Then the steady span
(first job's start to last job's end, the bench's "efficiency, steady") is split for each
process that ran jobs: 2 x span = the jobs' CPU + edges (before its first job, after its
last) + gaps (between its jobs) + preempted (inside its jobs, beyond their CPU).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from bench.peers.bodies import LineCounter
from bench.peers.run import SPIN_MS, Scale, Session
from bench.peers.systems import BY_KEY, FOUNDRY_BIN, WORKERS, System, with_args
from tests.redis_server import RedisServer

#: (comm, ns on a CPU, ns waiting for one) of each thread, by tid
Threads = dict[int, tuple[str, int, int]]


@attrs.frozen
class Snapshot:
    """Every watched thread's CPU, and the machine's, at one moment."""

    at_ns: int
    threads: dict[str, Threads]  # by role: "parent", "worker pid", "redis", "harness"
    machine: tuple[int, ...]  # /proc/stat's cpu line: user nice system idle iowait ...
    switches: tuple[int, int] = (0, 0)  # the worker's parent: voluntary, involuntary
    calls: dict[str, int] = attrs.field(factory=dict)  # Redis commandstats: calls by command


@attrs.frozen
class Loss:
    """How one job-running process spent the steady span beyond its jobs' CPU (ns)."""

    jobs: int
    edges: int
    gaps: int
    preempted: int


def losses(rows: dict[str, list[tuple[int, int]]], spin_ns: int) -> dict[str, Loss]:
    """Each process's (start, end) job spans, split against the steady span of them all."""
    first = min(start for spans in rows.values() for start, _ in spans)
    last = max(end for spans in rows.values() for _, end in spans)
    split = {}
    for name, unsorted in rows.items():
        spans = sorted(unsorted)
        gaps = sum(nxt[0] - prev[1] for prev, nxt in itertools.pairwise(spans))
        edges = spans[0][0] - first + last - spans[-1][1]
        preempted = sum(end - start - spin_ns for start, end in spans)
        split[name] = Loss(len(spans), edges, gaps, preempted)
    return split


def _threads(pid: int) -> Threads:
    found: Threads = {}
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.glob("*"):  # none once the process is gone
        try:
            run, wait, _ = map(int, (task / "schedstat").read_text().split())
            found[int(task.name)] = ((task / "comm").read_text().strip(), run, wait)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return found


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    pids = [int(child) for child in children]
    return pids + [grandchild for child in pids for grandchild in _descendants(child)]


def _switches(pid: int) -> tuple[int, int]:
    """A process's voluntary and involuntary context switches (its main thread's and the
    others' together, from ``/proc/<pid>/status``)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])


def _calls(redis_url: str) -> dict[str, int]:
    """Redis's calls so far by command (``INFO commandstats``)."""
    import redis  # noqa: PLC0415 - the harness's venv has it

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


def _snapshot(worker: int, redis_pid: int, redis_url: str = "") -> Snapshot:
    roles = {"parent": worker, "redis": redis_pid, "harness": os.getpid()}
    roles |= {f"child {pid}": pid for pid in _descendants(worker)}
    machine = tuple(int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:])
    threads = {role: _threads(pid) for role, pid in roles.items()}
    calls = _calls(redis_url) if redis_url else {}
    return Snapshot(time.perf_counter_ns(), threads, machine, _switches(worker), calls)


def _drain(
    session: Session, system: System, redis_pid: int, *, nap: bool = False
) -> tuple[Snapshot, Snapshot, Path]:
    """The cpu workload with ``session.scale.cpu`` jobs (``nap``: sleeping instead of
    spinning); snapshots at 10 % and 90 % done."""
    count, log_dir = session.scale.cpu, session.log_dir()
    session.flush(system)
    session.drive(system, log_dir, "spin", count, SPIN_MS, *(["nap"] if nap else []))
    snaps: list[Snapshot] = []
    with session.worker(system, log_dir) as (process, _):
        counter = LineCounter(log_dir)
        while (done := counter.count()) < count:
            if process.poll() is not None:
                raise RuntimeError(f"the worker exited with {process.returncode}")
            if done >= (count // 10 if not snaps else count - count // 10) and len(snaps) < 2:
                snaps.append(_snapshot(process.pid, redis_pid, session.redis_url))
            time.sleep(0.05)
    if len(snaps) < 2:
        raise RuntimeError("the jobs ran too fast to be watched: raise --jobs")
    return snaps[0], snaps[1], log_dir


def _job_rows(log_dir: Path) -> dict[str, list[tuple[int, int]]]:
    """Each job-running process's (start, end) spans, by pid, from the bodies' logs."""
    rows = {}
    for path in sorted(log_dir.glob("*.log")):
        pairs = (line.split() for line in path.read_text().splitlines())
        rows[path.stem] = [(int(start), int(end)) for start, end in pairs]
    return rows


def _report(before: Snapshot, after: Snapshot, rows: dict[str, list[tuple[int, int]]]) -> str:
    window = after.at_ns - before.at_ns
    jobs = sum(before.at_ns <= end <= after.at_ns for spans in rows.values() for _, end in spans)
    share = 100 / (WORKERS * window)
    lines = [f"window {window / 1e9:.2f} s, {jobs} jobs ended in it; % of 2 cores, us per job:"]
    watched = 0
    for role, threads in after.threads.items():
        for tid, (comm, run, wait) in threads.items():
            _, run0, wait0 = before.threads.get(role, {}).get(tid, (comm, 0, 0))
            used, waited = run - run0, wait - wait0
            watched += used
            if used > window // 10_000:  # under 0.01 %: a sleeping thread
                lines.append(
                    f"  {role:14} {comm:16} cpu {used * share:6.2f} % {used / jobs / 1e3:8.1f} us"
                    f"  waiting for a core {waited / jobs / 1e3:7.1f} us"
                )
    delta = [b - a for a, b in zip(before.machine, after.machine, strict=True)]
    total, idle = sum(delta[:8]), delta[3] + delta[4]
    busy_ns = (total - idle) / total * WORKERS * window
    lines.append(f"  other processes {(busy_ns - watched) * share:6.2f} %, idle {idle / total:.2%}")
    voluntary, involuntary = (b - a for a, b in zip(before.switches, after.switches, strict=True))
    lines.append(
        f"  parent context switches per job: voluntary {voluntary / jobs:.2f}, "
        f"involuntary {involuntary / jobs:.2f}"
    )
    calls = {
        name: count - before.calls.get(name, 0)
        for name, count in after.calls.items()
        if count > before.calls.get(name, 0) and name != "info"
    }
    if calls:
        per_job = (f"{name} {count / jobs:.3f}" for name, count in sorted(calls.items()))
        lines.append(f"  Redis calls per job: {', '.join(per_job)}")
    spans = losses(rows, int(SPIN_MS * 1e6))
    first = min(start for each in rows.values() for start, _ in each)
    span = max(end for each in rows.values() for _, end in each) - first
    busy = sum(loss.jobs for loss in spans.values()) * SPIN_MS * 1e6
    lines.append(f"steady span {span / 1e9:.3f} s, efficiency {busy / (WORKERS * span):.4f}:")
    for name, loss in spans.items():
        parts = {"edges": loss.edges, "gaps": loss.gaps, "preempted": loss.preempted}
        cells = [
            f"{key} {ns * 100 / (WORKERS * span):.2f} % ({ns / loss.jobs / 1e3:.0f} us/job)"
            for key, ns in parts.items()
        ]
        lines.append(f"  pid {name} ({loss.jobs} jobs): " + ", ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cpu workload of one system once and print where the cores went."""
    parser = argparse.ArgumentParser(prog="python -m bench.peers.account", description=__doc__)
    parser.add_argument("--peer", default="foundry", help="the system's key (bench.peers)")
    parser.add_argument("--jobs", type=int, default=1_000, help="10 ms spins (400 in the bench)")
    parser.add_argument("--venv", type=Path, default=FOUNDRY_BIN.parent.parent / ".venv-peers")
    parser.add_argument("--foundry-args", default="", help="extra 'foundry work' options")
    parser.add_argument(
        "--nap",
        action="store_true",
        help="jobs sleep 10 ms instead of spinning: jobs of one length on a busy machine, for "
        "the counts per job (context switches, Redis calls); the efficiency is then moot",
    )
    args = parser.parse_args(argv)
    system = with_args(BY_KEY[args.peer], tuple(shlex.split(args.foundry_args)))
    if system.store != "redis":
        parser.error("only the systems on Redis are accounted")
    scratch = Path(tempfile.mkdtemp(prefix="foundry-account-"))
    server = RedisServer().start()
    try:
        assert server.process is not None
        session = Session(server.url, args.venv / "bin", scratch, Scale(cpu=args.jobs))
        before, after, log_dir = _drain(session, system, server.process.pid, nap=args.nap)
        report = _report(before, after, _job_rows(log_dir))
        print(f"{system.label}, load {os.getloadavg()[0]:.2f}; {report}")
    finally:
        server.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
