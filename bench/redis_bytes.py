"""Workload 5: what one pending no-op job costs in Redis, in bytes and keys."""

from __future__ import annotations

from typing import Any

import redis

from bench.app import noop
from bench.backends import BATCH, open_dispatcher
from bench.env import Env
from bench.harness import Metric, Sample, Workload


def _usage(admin: redis.Redis, prefix: str) -> int:
    """Sum of ``MEMORY USAGE`` (exact: ``SAMPLES 0``) over every key under ``prefix``."""
    total = 0
    for key in admin.scan_iter(match=f"{prefix}*", count=1_000):
        used: Any = admin.memory_usage(key, samples=0)
        total += int(used or 0)
    return total


def run_once(env: Env, _backend: str) -> Sample:
    """Enqueue ``count`` jobs on an empty server; divide the INFO and DBSIZE deltas by it."""
    count = env.scale(10_000, 2_000)
    env.flush()
    prefix = env.unique("bytes")
    with env.client() as admin, open_dispatcher(env, "redis", prefix) as dispatcher:
        dispatcher.dispatch(noop)  # the queue's own keys exist before the baseline
        memory_before = int(admin.info("memory")["used_memory"])
        keys_before = int(admin.dbsize())
        for start in range(0, count, BATCH):
            dispatcher.dispatch_many([(noop, None)] * min(BATCH, count - start))
        memory_after = int(admin.info("memory")["used_memory"])
        keys_after = int(admin.dbsize())
        usage = _usage(admin, prefix)
    return {
        "info_bytes": (memory_after - memory_before) / count,
        "usage_bytes": usage / (count + 1),
        "keys": (keys_after - keys_before) / count,
    }


WORKLOADS = (
    Workload(
        name="redis_bytes",
        title="Redis memory per pending no-op job (INFO used_memory delta, MEMORY USAGE sum)",
        backends=("redis",),
        metrics=(
            Metric("info_bytes", "bytes/job (used_memory delta)", "B", 256, False),
            Metric("usage_bytes", "bytes/job (MEMORY USAGE)", "B", 256, False),
            Metric("keys", "keys/job", "keys", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)
