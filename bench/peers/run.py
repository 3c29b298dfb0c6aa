"""One repetition of every workload on one system: real workers, the same bodies, one Redis
(and one PostgreSQL cluster for the systems that keep their jobs there)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
import redis

from bench.harness import percentile
from bench.peers.bodies import LOG_DIR, LineCounter, read_log
from bench.peers.postgres import BenchDatabase
from bench.peers.systems import ROOT, WORKERS, System

Sample = dict[str, float]
BATCH = 1_000
WARM = 20
GAP_MS = 5.0
SPIN_MS = 10.0


@attrs.frozen
class Scale:
    """How many jobs each workload sends."""

    drain: int = 20_000
    cpu: int = 400
    latency: int = 200


@attrs.define
class Session:
    """What every measurement shares: the Redis, the PostgreSQL cluster (started when a
    system on PostgreSQL first runs), the peers' venv, a scratch directory."""

    redis_url: str
    peers_bin: Path
    scratch: Path
    scale: Scale
    database: BenchDatabase = attrs.Factory(BenchDatabase)
    _runs: int = 0

    def log_dir(self) -> Path:
        """A fresh, empty directory for the bodies' log lines."""
        self._runs += 1
        path = self.scratch / f"log-{self._runs}"
        path.mkdir()
        return path

    def environ(self, system: System, log_dir: Path) -> dict[str, str]:
        """The environment of a system's producer and worker."""
        environ = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_REDIS_URL": self.redis_url,
            LOG_DIR: str(log_dir),
            "QUEUE_DRIVER": "redis",
            "REDIS_URL": self.redis_url,
            "QUEUE_PREFIX": "peers",
            "FOUNDRY_LOG_LEVEL": "WARNING",
        }
        if system.store == "postgres":
            url = self.database.url
            environ |= {"BENCH_DATABASE_URL": url, "QUEUE_DRIVER": "postgres", "DATABASE_URL": url}
        return environ

    def drive(self, system: System, log_dir: Path, action: str, *args: object) -> Any:
        """Run ``bench.peers.driver`` for ``system``; its JSON answer."""
        command = [str(system.python(self.peers_bin)), "-m", "bench.peers.driver", system.app]
        done = subprocess.run(
            [*command, action, *map(str, args)],
            env=self.environ(system, log_dir),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{system.key} {action} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def server_cpu(self, system: System) -> float:
        """CPU seconds the system's server (redis-server or PostgreSQL) has used so far."""
        if system.store == "postgres":
            return self.database.cpu()
        with self.admin() as admin:
            cpu = admin.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def admin(self) -> redis.Redis:
        """A plain client on the bench's Redis."""
        return redis.Redis.from_url(self.redis_url)

    def flush(self, system: System) -> None:
        """Empty the bench's own Redis (we started it: nobody else's data is on it); for a
        system on PostgreSQL, a fresh database with that system's tables."""
        with self.admin() as admin:
            admin.flushall()
        if system.store == "postgres":
            self.database.reset()
            self.drive(system, self.log_dir(), "setup")

    @contextmanager
    def worker(
        self, system: System, log_dir: Path
    ) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
        """``system``'s worker in its own process group, and ``perf_counter_ns`` at spawn;
        the whole group is stopped on exit."""
        output = (log_dir.parent / f"{log_dir.name}-{system.key}.out").open("wb")
        spawned = time.perf_counter_ns()
        process = subprocess.Popen(
            system.command(self.peers_bin),
            env=self.environ(system, log_dir),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process, spawned
        finally:
            _stop_group(process)
            output.close()


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the worker's process group, SIGKILL to what is left after 30 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_lines(
    log_dir: Path, count: int, process: subprocess.Popen[bytes], timeout_s: float = 300
) -> None:
    """Until the bodies logged ``count`` lines; ``RuntimeError`` if the worker exits first."""
    counter = LineCounter(log_dir)
    deadline = time.monotonic() + timeout_s
    while (done := counter.count()) < count:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode} after {done} jobs")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {count} jobs ran within {timeout_s:.0f} s")
        time.sleep(0.05)


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used by the live processes of process group ``pgid``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after "comm)": state ppid pgrp ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _baseline(session: Session, system: System) -> int:
    """What the empty store holds: Redis ``used_memory``, or PostgreSQL's tables' bytes."""
    if system.store == "postgres":
        return session.database.table_bytes()
    with session.admin() as admin:
        return int(admin.info("memory")["used_memory"])


def _bytes_per_job(session: Session, system: System, baseline: int, jobs: int) -> Sample:
    """``MEMORY USAGE`` summed over every key, and the ``used_memory`` delta, per job; on
    PostgreSQL, the growth of the tables (heap, TOAST, indexes) per job."""
    if system.store == "postgres":
        return {"bytes": (session.database.table_bytes() - baseline) / jobs}
    with session.admin() as admin:
        usage = sum(int(admin.memory_usage(key, samples=0) or 0) for key in admin.scan_iter())
        used = int(admin.info("memory")["used_memory"])
    return {"bytes": usage / jobs, "used_memory": (used - baseline) / jobs}


def enqueue_and_drain(session: Session, system: System) -> Sample:
    """Single enqueue into an empty Redis, the bytes it holds, then the drain from spawn."""
    session.flush(system)
    baseline = _baseline(session, system)
    count, log_dir = session.scale.drain, session.log_dir()
    server_cpu = session.server_cpu(system)
    sent = session.drive(system, log_dir, "single", count)
    sample = {
        "single": count / sent["seconds"],
        "single_cpu": sent["cpu"] / count * 1e6,
        "single_redis_cpu": (session.server_cpu(system) - server_cpu) / count * 1e6,
    }
    jobs = count + 1  # the one sent before the timing
    sample |= _bytes_per_job(session, system, baseline, jobs)
    server_cpu = session.server_cpu(system)
    with session.worker(system, log_dir) as (process, spawned):
        wait_lines(log_dir, jobs, process)
        sample["drain_cpu"] = group_cpu(process.pid) / jobs * 1e6
        sample["drain_redis_cpu"] = (session.server_cpu(system) - server_cpu) / jobs * 1e6
    ends = [row[0] for row in read_log(log_dir)]
    first, last = min(ends), max(ends)
    sample["drain"] = jobs / ((last - spawned) / 1e9)
    sample["drain_steady"] = (jobs - 1) / max((last - first) / 1e9, 1e-9)
    sample["startup"] = (first - spawned) / 1e9
    return sample


def bulk(session: Session, system: System) -> Sample:
    """Bulk enqueue in batches of ``BATCH``, where the system has a bulk API."""
    if not system.bulk:
        return {}
    session.flush(system)
    count = session.scale.drain
    seconds = session.drive(system, session.log_dir(), "bulk", count, BATCH)["seconds"]
    return {"bulk": count / seconds}


def cpu(session: Session, system: System) -> Sample:
    """``scale.cpu`` jobs of 10 ms CPU each, from spawn: the work done / (2 processes x wall)."""
    session.flush(system)
    count, log_dir = session.scale.cpu, session.log_dir()
    session.drive(system, log_dir, "spin", count, SPIN_MS)
    with session.worker(system, log_dir) as (process, spawned):
        wait_lines(log_dir, count, process)
    spans = read_log(log_dir)
    busy = count * SPIN_MS * 1e6  # the CPU work the jobs did, in ns
    last = max(end for _, end in spans)
    first = min(start for start, _ in spans)
    return {
        "efficiency": busy / (WORKERS * (last - spawned)),
        "efficiency_steady": busy / (WORKERS * (last - first)),
    }


def latency(session: Session, system: System) -> Sample:
    """Send-to-start of ``scale.latency`` jobs, one at a time, to 2 idle warmed processes."""
    session.flush(system)
    sends, log_dir = session.scale.latency, session.log_dir()
    with session.worker(system, log_dir) as (process, _):
        answer = session.drive(system, log_dir, "latency", WARM, sends, GAP_MS)
        wait_lines(log_dir, WARM + sends, process)
    started = {n: at for n, at in read_log(log_dir) if n >= 0}
    waits = [(started[int(n)] - at) / 1e6 for n, at in answer["sent"].items()]
    return {f"p{q}": percentile(waits, q / 100) for q in (50, 90, 99)}


Workload = Callable[[Session, System], Sample]
WORKLOADS: tuple[Workload, ...] = (enqueue_and_drain, bulk, cpu, latency)
