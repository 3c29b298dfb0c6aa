"""The queue on PostgreSQL: enqueue (single, batch of 1,000), drain of 20,000 no-op jobs with
2 children (a real ``foundry work``), enqueue-to-start latency, and bytes per pending job.

Every run works in a fresh schema of the bench's throwaway database (``Env.postgres_url``),
migrated first, so runs never see each other's rows or dead tuples. Goals: drain >= 2,000
jobs/s, latency p99 <= 5 ms. ``python -m bench.postgres_queue`` runs just these.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from bench.app import LOG_DIR, QUEUE, noop, read_log, registry, stamp
from bench.backends import BATCH
from bench.env import Env
from bench.harness import Metric, Sample, Workload, percentile, rate, stopwatch
from bench.latency import GAP_S, WARM, wait_logged
from bench.workers import POLL_S, foundry_binary, fresh_log_dir
from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import QueuePort

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _schema(env: Env) -> Iterator[str]:
    """A fresh, migrated schema for one run; dropped afterwards."""
    from foundry.adapters.postgres.config import PostgresSettings  # noqa: PLC0415
    from foundry.adapters.postgres.connection import connect  # noqa: PLC0415
    from foundry.adapters.postgres.migrator import Migrator  # noqa: PLC0415

    name = env.unique("bench").replace("-", "_")
    settings = PostgresSettings(url=env.postgres_url, schema=name)
    Migrator(lambda: connect(settings), name).migrate()
    try:
        yield name
    finally:
        with _admin(env) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _admin(env: Env) -> psycopg.Connection:
    return psycopg.connect(env.postgres_url, autocommit=True)


def _settings(env: Env, schema: str) -> Settings:
    return Settings(
        queue_driver=Driver.POSTGRES, database_url=env.postgres_url, database_schema=schema
    )


@contextmanager
def _queue(env: Env, schema: str) -> Iterator[QueuePort]:
    container = build_container(_settings(env, schema))
    try:
        yield container.queue()
    finally:
        container.postgres_pool().close()


@contextmanager
def _work(
    env: Env, schema: str, log_dir: Path, *, async_commit: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``foundry work`` (2 children) on the schema's bench queue; SIGTERM on exit.

    ``async_commit``: the worker's sessions run with ``synchronous_commit=off`` (libpq's
    ``PGOPTIONS``), so its commits do not wait for the WAL flush.
    """
    environ = {
        **({"PGOPTIONS": "-c synchronous_commit=off"} if async_commit else {}),
        **os.environ,
        "QUEUE_DRIVER": "postgres",
        "DATABASE_URL": env.postgres_url,
        "DATABASE_SCHEMA": schema,
        "FOUNDRY_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        LOG_DIR: str(log_dir),
    }
    command = [foundry_binary(), "work", "--app", "bench.app:registry", "--queues", QUEUE]
    process = subprocess.Popen([*command, "--concurrency", "2"], env=environ, cwd=ROOT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


def _table_bytes(env: Env, schema: str) -> int:
    """Heap, TOAST and indexes of every table of the schema."""
    with _admin(env) as admin:
        row = admin.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND c.relkind = 'r'",
            [schema],
        ).fetchone()
    return int(row[0]) if row else 0


def _enqueue(env: Env, schema: str, count: int) -> Sample:
    with _queue(env, schema) as queue:
        dispatcher = Dispatcher(queue, registry, SystemClock())
        dispatcher.dispatch(noop)  # connect and prepare outside the timing
        with stopwatch() as elapsed:
            for _ in range(count):
                dispatcher.dispatch(noop)
        single = rate(count, elapsed())
        before = _table_bytes(env, schema)
        with stopwatch() as elapsed:
            for start in range(0, count, BATCH):
                dispatcher.dispatch_many([(noop, None)] * min(BATCH, count - start))
        batch = rate(count, elapsed())
        grown = _table_bytes(env, schema) - before
    return {"single": single, "batch": batch, "bytes": grown / count}


def _completion_span(env: Env, schema: str) -> tuple[datetime, datetime]:
    with _admin(env) as admin:
        row = admin.execute(
            sql.SQL(
                "SELECT min(finished_at), max(finished_at) FROM {}.jobs WHERE state = 'completed'"
            ).format(sql.Identifier(schema))
        ).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"no completed job in schema {schema}")
    return row[0], row[1]


def _drain(env: Env, schema: str, count: int, *, async_commit: bool = False) -> Sample:
    log_dir = fresh_log_dir(env)
    with _queue(env, schema) as queue:
        dispatcher = Dispatcher(queue, registry, SystemClock())
        for start in range(0, count, BATCH):
            dispatcher.dispatch_many([(noop, None)] * min(BATCH, count - start))
        spawned, spawned_at = time.perf_counter(), time.time()
        with _work(env, schema, log_dir, async_commit=async_commit) as process:
            deadline = spawned + 600
            while queue.stats(QUEUE).completed < count:
                if process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"drain stopped at {queue.stats(QUEUE).completed}")
                time.sleep(POLL_S)
    first, last = (moment.timestamp() - spawned_at for moment in _completion_span(env, schema))
    return {
        "drain": rate(count, last),
        "drain_steady": rate(count - 1, last - first),
        "startup": first,
    }


def _latency(env: Env, schema: str, sends: int, *, async_commit: bool = False) -> Sample:
    log_dir = fresh_log_dir(env)
    sent: dict[int, int] = {}
    with (
        _queue(env, schema) as queue,
        _work(env, schema, log_dir, async_commit=async_commit) as process,
    ):
        dispatcher = Dispatcher(queue, registry, SystemClock())
        for n in range(WARM):
            dispatcher.dispatch(stamp, {"n": -1 - n})
        wait_logged(log_dir, WARM, process)
        for n in range(sends):
            time.sleep(GAP_S)
            sent[n] = time.perf_counter_ns()
            dispatcher.dispatch(stamp, {"n": n})
        wait_logged(log_dir, WARM + sends, process)
    started = {n: at for n, at in read_log(log_dir) if n >= 0}
    waits = [(started[n] - at) / 1e6 for n, at in sent.items()]
    return {f"p{q}": percentile(waits, q / 100) for q in (50, 90, 99)}


def run_once(env: Env, _backend: str) -> Sample:
    """One sample of every figure, each in a fresh schema."""
    count, sends = env.scale(20_000, 4_000), env.scale(200, 100)
    sample: dict[str, float] = {}
    with _schema(env) as schema:
        sample.update(_enqueue(env, schema, count))
    with _schema(env) as schema:
        sample.update(_drain(env, schema, count))
    with _schema(env) as schema:
        sample["drain_async"] = _drain(env, schema, count, async_commit=True)["drain_steady"]
    with _schema(env) as schema:
        sample.update(_latency(env, schema, sends))
    with _schema(env) as schema:
        sample["p99_async"] = _latency(env, schema, sends, async_commit=True)["p99"]
    return sample


WORKLOADS = (
    Workload(
        name="postgres_queue",
        title="The queue on PostgreSQL: enqueue, drain 20,000 no-op (2 children), latency, size",
        backends=("postgres",),
        metrics=(
            Metric("single", "enqueue, single dispatch", "jobs/s"),
            Metric("batch", "enqueue, batch of 1,000", "jobs/s"),
            Metric("drain", "drain no-op, incl. startup", "jobs/s", target=2_000),
            Metric("drain_steady", "drain no-op, after startup", "jobs/s"),
            Metric("drain_async", "drain, worker's commits async (steady)", "jobs/s"),
            Metric("startup", "worker startup (spawn to 1st done)", "s", higher_is_better=False),
            Metric("p50", "latency p50", "ms", higher_is_better=False),
            Metric("p90", "latency p90", "ms", higher_is_better=False),
            Metric("p99", "latency p99", "ms", 5.0, False),
            Metric("p99_async", "latency p99, worker's commits async", "ms", None, False),
            Metric("bytes", "bytes/pending job (tables + indexes)", "B", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "postgres_queue", *sys.argv[1:]]))
