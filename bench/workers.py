"""Real ``foundry work`` processes for the drain, CPU and latency workloads, and their clocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import attrs
import redis

from bench.app import LOG_DIR, QUEUE, registry
from bench.backends import BATCH, open_queue
from bench.env import Env
from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.application.dispatcher import Dispatcher
from foundry.application.outcome import Outcome
from foundry.application.pool import Pool, PoolConfig
from foundry.ports import Lease, QueuePort

ROOT = Path(__file__).resolve().parent.parent
# How often the bench looks at the queue's counters while it drains. The times come from the
# completed records, so polling only notices the end: a 2 ms poll took a few % of a core.
POLL_S = 0.05
PREFETCH = 16
PREFETCHED = f"redis, --prefetch {PREFETCH}"


def foundry_binary() -> str:
    """The ``foundry`` console script installed beside this interpreter."""
    return str(Path(sys.executable).parent / "foundry")


@contextmanager
def foundry_work(
    env: Env, prefix: str, log_dir: Path, concurrency: int = 2, prefetch: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """``foundry work`` on the bench queue of our Redis under ``prefix``; SIGTERM on exit."""
    environ = {
        **os.environ,
        "QUEUE_DRIVER": "redis",
        "REDIS_URL": env.redis_url,
        "QUEUE_PREFIX": prefix,
        "FOUNDRY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        LOG_DIR: str(log_dir),
    }
    command = [foundry_binary(), "work", "--app", "bench.app:registry", "--queues", QUEUE]
    command += ["--concurrency", str(concurrency), "--prefetch", str(prefetch)]
    process = subprocess.Popen(command, env=environ, cwd=ROOT)
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@attrs.frozen
class DrainClock:
    """When a drain started, first showed progress, and finished (``perf_counter`` seconds)."""

    spawned: float
    first: float
    done_at_first: int
    last: float


Watch = Callable[[subprocess.Popen[bytes], int], None]


def wait_drained(
    queue: QueuePort,
    count: int,
    process: subprocess.Popen[bytes],
    *,
    redis_url: str,
    prefix: str,
    spawned: tuple[float, float],
    watch: Watch | None = None,
    timeout_s: float = 600.0,
) -> DrainClock:
    """Poll ``queue``'s completed counter until ``count`` jobs are done; the first and last
    completion times are read from the completed records (Redis time, ms).

    ``spawned`` is ``(perf_counter(), time())`` at spawn. ``watch(process, done)`` is called
    at every poll. Raises ``RuntimeError`` if the worker exits first or ``timeout_s`` passes.
    """
    started, started_at = spawned
    deadline = started + timeout_s
    while True:
        done = queue.stats(QUEUE).completed
        if watch is not None:
            watch(process, done)
        now = time.perf_counter()
        if done >= count:
            first, last = _completion_span(redis_url, queue, prefix, started, started_at)
            return DrainClock(started, first, 1, last)
        if process.poll() is not None:
            raise RuntimeError(f"foundry work exited with {process.returncode} after {done} jobs")
        if now > deadline:
            raise RuntimeError(f"only {done} of {count} jobs completed in {timeout_s} s")
        time.sleep(POLL_S)


def _completion_span(
    redis_url: str, queue: QueuePort, prefix: str, spawned: float, spawned_at: float
) -> tuple[float, float]:
    """When the first and the last job completed, on the ``perf_counter`` timeline of
    ``spawned`` (``spawned_at`` is the same moment by the wall clock Redis ``TIME`` reads)."""
    done_key = QueueKeys.of(prefix, QUEUE).named("done")  # completed ids by expiry: by end
    client = redis.Redis.from_url(redis_url)
    try:
        ends: list[list[bytes]] = [client.zrange(done_key, i, i) for i in (0, -1)]  # type: ignore[misc]
    finally:
        client.close()
    times = []
    for [job_id] in ends:
        record = queue.get(job_id.decode(), QUEUE)
        if record is None or record.finished_at is None:
            raise RuntimeError(f"completed job {job_id!r} has no finish time")
        times.append(spawned + record.finished_at.timestamp() - spawned_at)
    return times[0], times[1]


def fresh_log_dir(env: Env) -> Path:
    """An empty directory for the handlers' logs."""
    path = env.scratch / env.unique("log")
    path.mkdir()
    return path


Items = list[tuple[str, dict[str, object] | None]]


def fill(queue: QueuePort, items: Items) -> None:
    """Dispatch ``items`` (handler name, payload) onto ``queue`` in batches of ``BATCH``."""
    dispatcher = Dispatcher(queue, registry, SystemClock())
    for start in range(0, len(items), BATCH):
        dispatcher.dispatch_many(items[start : start + BATCH])


def drain_redis(
    env: Env, items: Items, log_dir: Path, watch: Watch | None = None, prefetch: int = 0
) -> DrainClock:
    """Enqueue ``items`` on a fresh prefix, then time ``foundry work`` draining them."""
    env.flush()
    prefix = env.unique("drain")
    with open_queue(env, "redis", prefix) as queue:
        fill(queue, items)
        spawned = (time.perf_counter(), time.time())
        with foundry_work(env, prefix, log_dir, prefetch=prefetch) as process:
            return wait_drained(
                queue,
                len(items),
                process,
                redis_url=env.redis_url,
                prefix=prefix,
                spawned=spawned,
                watch=watch,
            )


class _Timer:
    """A pool observer noting the first and the last finish."""

    def __init__(self) -> None:
        self.first = 0.0
        self.last = 0.0
        self.finished = 0
        self.finished_at_first = 0

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """Unused: the first finish ends startup, as in ``wait_drained``."""

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Unused."""

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Unused."""

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """Count and time every finish."""
        self.last = time.perf_counter()
        self.finished += 1
        if not self.first:
            self.first, self.finished_at_first = self.last, self.finished


def drain_memory(env: Env, items: Items, log_dir: Path) -> DrainClock:
    """Enqueue ``items`` on a ``MemoryQueue``, then time an in-process pool in burst mode."""
    with open_queue(env, "memory", "") as queue:
        fill(queue, items)
        return _run_pool(queue, len(items), log_dir)


def _run_pool(queue: QueuePort, count: int, log_dir: Path) -> DrainClock:
    os.environ[LOG_DIR] = str(log_dir)  # the forked children read it
    timer = _Timer()
    config = PoolConfig(queues=(QUEUE,), concurrency=2, burst=True)
    pool = Pool(queue, registry, config, clock=SystemClock(), observer=timer)
    spawned = time.perf_counter()
    code = pool.run()
    if code != 0 or timer.finished != count:
        raise RuntimeError(f"the pool exited {code} after {timer.finished} of {count} jobs")
    return DrainClock(spawned, timer.first, timer.finished_at_first, timer.last)


def drain(env: Env, backend: str, items: Items) -> tuple[DrainClock, Path]:
    """Drain ``items`` on ``backend`` with 2 children; the clock and the handlers' log dir.

    ``backend`` is ``memory``, ``redis`` or ``PREFETCHED`` (``foundry work --prefetch 16``).
    """
    log_dir = fresh_log_dir(env)
    if backend == "memory":
        return drain_memory(env, items, log_dir), log_dir
    prefetch = PREFETCH if backend == PREFETCHED else 0
    return drain_redis(env, items, log_dir, prefetch=prefetch), log_dir
