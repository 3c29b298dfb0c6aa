"""Parent RSS over a long drain (full run only): it must stay flat, within +-10 MB."""

from __future__ import annotations

import subprocess
import time

import psutil

from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate
from bench.workers import Items, drain_redis, fresh_log_dir

MB = 1024 * 1024
EVERY_S = 0.25


class RssWatch:
    """Samples the worker parent's RSS every ``EVERY_S`` while it drains."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []  # (jobs done, rss bytes)
        self._next = 0.0

    def __call__(self, process: subprocess.Popen[bytes], done: int) -> None:
        """Record one sample if ``EVERY_S`` passed since the last."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + EVERY_S
            self.samples.append((done, psutil.Process(process.pid).memory_info().rss))


def run_once(env: Env, _backend: str) -> Sample:
    """Drain ``count`` no-op jobs; RSS spread after the first tenth (the warm-up)."""
    count = env.scale(100_000, 10_000)
    items: Items = [("bench.noop", None)] * count
    watch = RssWatch()
    clock = drain_redis(env, items, fresh_log_dir(env), watch)
    warm = [rss for done, rss in watch.samples if done >= count // 10]
    if len(warm) < 2:
        raise RuntimeError(f"only {len(warm)} RSS samples after warm-up; drain too short")
    return {
        "spread": (max(warm) - min(warm)) / MB,
        "growth": (warm[-1] - warm[0]) / MB,
        "final": warm[-1] / MB,
        "rate": rate(count - clock.done_at_first, clock.last - clock.first),
    }


WORKLOADS = (
    Workload(
        name="rss",
        title="Worker parent RSS over a 100,000-job no-op drain",
        backends=("redis",),
        metrics=(
            Metric("spread", "parent RSS max-min after warm-up", "MB", 10, False),
            Metric("growth", "parent RSS last-first after warm-up", "MB", 10, False),
            Metric("final", "parent RSS at the end", "MB", higher_is_better=False),
            Metric("rate", "drain rate, 100k jobs, after startup", "jobs/s"),
        ),
        run_once=run_once,
        full_only=True,
    ),
)
