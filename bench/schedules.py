"""Workload: 10,000 periodic schedules ticking together, three ``foundry schedules run-forever``
processes on one Redis.

Every schedule ticks every ``EVERY_S`` seconds (one burst of 10,000 ticks per period). Over
one period holding one burst, the bench reads Redis' own time (INFO commandstats: usec of
every command) and the schedulers' CPU time (user + system); it reads them again over a
quiet stretch (polls only) and reports the cost of a minute of schedules that tick once a
minute: the burst's period plus the rest of the minute at the quiet rate.

A tick's job is enqueued up to five seconds ahead, delayed until the tick: "enqueued ahead of
its tick" is tick - enqueued (the 1st percentile is the job enqueued least ahead); a job is
claimable at max(enqueued, tick), so the tick-to-claimable delay is max(0, enqueued - tick).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psutil
import redis

from bench.env import Env
from bench.harness import Metric, Sample, Workload, percentile
from bench.schedule_app import COUNT, EVERY, QUEUE
from bench.workers import ROOT
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.records import split_record

SCHEDULERS = 3
EVERY_S = 15


def _redis_usec(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(value["usec"]) for value in stats.values())


def _cpu_s(processes: list[psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


@contextmanager
def _scheduler(env: Env, prefix: str, count: int) -> Iterator[psutil.Process]:
    environ = {
        **os.environ,
        "QUEUE_DRIVER": "redis",
        "REDIS_URL": env.redis_url,
        "QUEUE_PREFIX": prefix,
        "FOUNDRY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        COUNT: str(count),
        EVERY: str(EVERY_S),
    }
    command = [sys.executable, "-m", "foundry.entrypoints.cli", "schedule", "run-forever"]
    process = subprocess.Popen([*command, "--app", "bench.schedule_app:registry"], env=environ)
    try:
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def _sleep_until_phase(phase_s: float) -> None:
    """Until ``phase_s`` seconds into the current schedule period (wall clock)."""
    now = time.time()
    start = now - now % EVERY_S + phase_s
    time.sleep((start if start > now else start + EVERY_S) - now)


def _delays_ms(client: redis.Redis, prefix: str) -> list[float]:
    """Enqueue time minus tick of every job enqueued (from the records in Redis)."""
    delays = []
    for job_id, value in client.hscan_iter(QueueKeys.of(prefix, QUEUE).named("jobs")):
        tick_us = int(job_id.rsplit(b"-", 1)[1])
        delays.append(split_record(value).enqueued_ms - tick_us / 1000)
    return delays


def run_once(env: Env, _backend: str) -> Sample:
    """Start the schedulers, skip their first period (sync), then measure."""
    count = env.scale(10_000, 2_000)
    env.flush()
    prefix = env.unique("schedules")
    client = env.client()
    with ExitStack() as stack:
        procs = [stack.enter_context(_scheduler(env, prefix, count)) for _ in range(SCHEDULERS)]
        _sleep_until_phase(3.0)  # synced, and a burst (enqueued from 5 s before) is over
        client.delete(QueueKeys.of(prefix, QUEUE).named("jobs"))
        quiet_usec, quiet_cpu = _redis_usec(client), _cpu_s(procs)
        _sleep_until_phase(EVERY_S - 6.0)
        quiet_s = EVERY_S - 9.0
        quiet_usec, quiet_cpu = _redis_usec(client) - quiet_usec, _cpu_s(procs) - quiet_cpu
        burst_usec, burst_cpu = _redis_usec(client), _cpu_s(procs)
        _sleep_until_phase(EVERY_S - 6.0)  # one period, holding one burst
        burst_usec, burst_cpu = _redis_usec(client) - burst_usec, _cpu_s(procs) - burst_cpu
    delays = _delays_ms(client, prefix)
    client.close()
    if len(delays) != count:
        raise RuntimeError(f"{len(delays)} jobs for {count} ticks of one burst")
    rest = (60 - EVERY_S) / quiet_s
    redis_ms = (burst_usec + quiet_usec * rest) / 1000
    cpu_ms = (burst_cpu + quiet_cpu * rest) * 1000
    late = [max(delay, 0.0) for delay in delays]
    return {
        "lead50": -percentile(delays, 0.5),
        "lead1": -percentile(delays, 0.99),
        "p50": percentile(late, 0.5),
        "p99": percentile(late, 0.99),
        "redis": redis_ms,
        "cpu": cpu_ms,
        "core": (redis_ms + cpu_ms) / 60_000 * 100 / (count / 1000),
    }


WORKLOADS = (
    Workload(
        name="schedules",
        title=f"10,000 schedules ticking together, {SCHEDULERS} schedulers, cost per minute",
        backends=("redis",),
        metrics=(
            Metric("lead50", "enqueued ahead of its tick, p50", "ms"),
            Metric("lead1", "enqueued ahead of its tick, 1st percentile", "ms"),
            Metric("p50", "tick to claimable p50", "ms", higher_is_better=False),
            Metric("p99", "tick to claimable p99", "ms", 100.0, False),
            Metric("redis", "Redis time per minute", "ms", higher_is_better=False),
            Metric("cpu", "schedulers' CPU per minute", "ms", higher_is_better=False),
            Metric("core", "% of a core per 1,000", "%", 1.0, False),
        ),
        run_once=run_once,
        full_only=False,
    ),
)
