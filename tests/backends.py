"""Where adapters join the suites: one factory per backend, and helpers the suites share.

Adding a queue backend = one factory (and a way to corrupt a stored job) + one entry in
``QUEUE_BACKENDS``; a cache backend = one entry in ``CACHE_BACKENDS``. The contract suites and
the fixtures in ``conftest.py`` pick them up.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

import attrs
import pytest
import redis
import redis.asyncio

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.memory.async_queue import AsyncMemoryQueue
from foundry.adapters.memory.cache import MemoryCache
from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect as pg_connect
from foundry.adapters.postgres.connection import open_pool
from foundry.adapters.postgres.migrator import Migrator
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.adapters.redis.async_queue import AsyncRedisQueue
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect, connect_async
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState
from foundry.ports import (
    AsyncQueuePort,
    BatchPort,
    DeadLetterRetention,
    JobRecord,
    QueuePort,
    SchedulePort,
    WorkerRegistry,
)
from foundry.ports.cache import CachePort


class Queue(QueuePort, WorkerRegistry, SchedulePort, Protocol):
    """What the suites drive: the queue port and the worker registry of one backend."""


class BatchQueue(Queue, BatchPort, Protocol):
    """A backend that also keeps batches (``QueueBackend.batches``)."""


#: Resolves a pytest fixture by name, lazily (``request.getfixturevalue``), so a memory-only
#: run never starts a redis-server.
FixtureLookup = Callable[[str], Any]


@attrs.frozen
class QueueOptions:
    """Adapter settings a contract test may change."""

    retention: DeadLetterRetention = attrs.Factory(DeadLetterRetention)
    completed_ttl: timedelta = timedelta(hours=1)


@attrs.frozen
class QueueBackend:
    """How to build one adapter for a test, and how to damage a job it stores.

    ``build(fixture, clock, options)`` returns a fresh, empty queue private to the test (for a
    shared server: a unique key prefix) whose time is ``clock``'s. ``corrupt(queue, queue_name,
    job_id)`` overwrites the stored job with bytes the codec cannot decode.
    """

    build: Callable[[FixtureLookup, ManualClock, QueueOptions], Queue]
    corrupt: Callable[[Queue, str, str], None]
    marks: tuple[pytest.MarkDecorator, ...] = ()
    #: ``twin(fixture, clock, queue)``: an ``AsyncQueuePort`` over the store ``queue`` uses.
    twin: Callable[[FixtureLookup, ManualClock, Queue], AsyncQueuePort] = attrs.field(
        default=lambda _, __, queue: _twin_memory(queue)
    )
    #: Whether its queue is also a ``BatchPort`` (the batch suite runs on it).
    batches: bool = False
    #: Capabilities this backend does not offer yet, each with the tests that need it
    #: (``file.py`` or ``file.py::test_name``): conftest deselects exactly those for it.
    lacks: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    def lacked_by(self, test: str) -> str | None:
        """The capability ``test`` (``file.py::name``) needs that this backend lacks."""
        for capability, tests in self.lacks.items():
            if any(test == name or test.startswith(f"{name}::") for name in tests):
                return capability
        return None


def _build_memory(_: FixtureLookup, clock: ManualClock, options: QueueOptions) -> Queue:
    return MemoryQueue(clock, retention=options.retention, completed_ttl=options.completed_ttl)


def _corrupt_memory(queue: Queue, queue_name: str, job_id: str) -> None:
    assert isinstance(queue, MemoryQueue)
    # Reaching into the store is the memory twin of writing garbage into a Redis key.
    entry = queue._store.entry(queue_name, job_id)
    assert entry is not None
    entry.blob = b"\x00 not a job"


def _twin_memory(queue: Queue) -> AsyncQueuePort:
    assert isinstance(queue, MemoryQueue)
    return AsyncMemoryQueue(queue)


def _redis_twin(url_fixture: str) -> Callable[[FixtureLookup, ManualClock, Queue], AsyncQueuePort]:
    def twin(fixture: FixtureLookup, clock: ManualClock, queue: Queue) -> AsyncQueuePort:
        assert isinstance(queue, RedisQueue)
        client = connect_async(RedisSettings(url=fixture(url_fixture)))
        return AsyncRedisQueue(client, prefix=queue._keys.prefix, clock=clock)

    return twin


def _build_redis(fixture: FixtureLookup, clock: ManualClock, options: QueueOptions) -> Queue:
    client = redis.Redis.from_url(fixture("redis_url"))
    return RedisQueue(
        client,
        prefix=unique_prefix("q"),
        clock=clock,
        retention=options.retention,
        completed_ttl=options.completed_ttl,
    )


def _corrupt_redis(queue: Queue, queue_name: str, job_id: str) -> None:
    assert isinstance(queue, RedisQueue)
    # Keep the record's header (the scripts read it) and break the codec blob after it.
    key = queue._keys.queue(queue_name).named("jobs")
    client = queue._runner.client
    header = client.hget(key, job_id).split(b" ", 4)  # type: ignore[union-attr]
    client.hset(key, job_id, b" ".join([*header[:3], b"0", b"\x00 not a job"]))


def _build_redis_acl(fixture: FixtureLookup, clock: ManualClock, options: QueueOptions) -> Queue:
    """As the least-privilege user of docs/redis-acl.md, under the prefix its ACL allows."""
    return RedisQueue(
        redis.Redis.from_url(fixture("redis_acl_url")),
        prefix=f"foundry:{unique_prefix('q')}",
        clock=clock,
        retention=options.retention,
        completed_ttl=options.completed_ttl,
    )


def _build_redis_sentinel(
    fixture: FixtureLookup, clock: ManualClock, options: QueueOptions
) -> Queue:
    """On the master the session's sentinels name, through the project's connection factory."""
    return RedisQueue(
        connect(RedisSettings(url=fixture("redis_sentinel_url"), client_name="foundry-tests")),
        prefix=unique_prefix("q"),
        clock=clock,
        retention=options.retention,
        completed_ttl=options.completed_ttl,
    )


def _build_redis_cluster(
    fixture: FixtureLookup, clock: ManualClock, options: QueueOptions
) -> Queue:
    """On the session's three-master cluster, through the project's connection factory."""
    return RedisQueue(
        connect(RedisSettings(url=fixture("redis_cluster_url"), client_name="foundry-tests")),
        prefix=unique_prefix("q"),
        clock=clock,
        retention=options.retention,
        completed_ttl=options.completed_ttl,
    )


def postgres_queue(
    fixture: FixtureLookup, clock: ManualClock | None, options: QueueOptions | None = None
) -> PostgresQueue:
    """A PostgresQueue in a fresh, migrated schema of the session's throwaway database,
    closed when the test ends."""
    chosen = options or QueueOptions()
    schema = f"q_{uuid.uuid4().hex[:12]}"
    settings = PostgresSettings(fixture("postgres_url"), schema=schema, pool_size=4)
    Migrator(partial(pg_connect, settings), schema).migrate()
    queue = PostgresQueue(
        open_pool(settings, name="foundry-tests"),
        settings,
        clock=clock,
        retention=chosen.retention,
        completed_ttl=chosen.completed_ttl,
    )
    fixture("postgres_closing").append(queue.close)
    return queue


def _build_postgres(fixture: FixtureLookup, clock: ManualClock, options: QueueOptions) -> Queue:
    return postgres_queue(fixture, clock, options)


def _twin_postgres(_: FixtureLookup, clock: ManualClock, queue: Queue) -> AsyncQueuePort:
    assert isinstance(queue, PostgresQueue)
    return AsyncPostgresQueue(queue._db.settings, clock=clock)


def _corrupt_postgres(queue: Queue, queue_name: str, job_id: str) -> None:
    assert isinstance(queue, PostgresQueue)
    with queue._db.conn() as conn:
        conn.execute(
            f'UPDATE "{queue.schema}".jobs SET blob = %s WHERE queue = %s AND id = %s',  # type: ignore[arg-type]
            [b"\x00 not a job", queue_name, job_id],
        )


#: What the PostgreSQL queue does not offer yet, and the tests that need it.
POSTGRES_LACKS: dict[str, tuple[str, ...]] = {}

#: What the Redis queue does not offer yet, and the tests that need it.
REDIS_LACKS: dict[str, tuple[str, ...]] = {}


QUEUE_BACKENDS: dict[str, QueueBackend] = {
    "memory": QueueBackend(_build_memory, _corrupt_memory, batches=True),
    "redis": QueueBackend(
        _build_redis,
        _corrupt_redis,
        (pytest.mark.redis,),
        _redis_twin("redis_url"),
        True,
        lacks=REDIS_LACKS,
    ),
    "redis-acl": QueueBackend(
        _build_redis_acl,
        _corrupt_redis,
        (pytest.mark.redis,),
        _redis_twin("redis_acl_url"),
        True,
        lacks=REDIS_LACKS,
    ),
    "redis-sentinel": QueueBackend(
        _build_redis_sentinel,
        _corrupt_redis,
        (pytest.mark.redis,),
        _redis_twin("redis_sentinel_url"),
        True,
        lacks=REDIS_LACKS,
    ),
    "redis-cluster": QueueBackend(
        _build_redis_cluster,
        _corrupt_redis,
        (pytest.mark.redis,),
        _redis_twin("redis_cluster_url"),
        True,
        lacks=REDIS_LACKS,
    ),
    "postgres": QueueBackend(
        _build_postgres,
        _corrupt_postgres,
        (pytest.mark.postgres,),
        _twin_postgres,
        True,
        lacks=POSTGRES_LACKS,
    ),
}


# -- caches -----------------------------------------------------------------------------------


NOT_JSON = b"{not json"


class Corrupt(Protocol):
    """Stores ``body`` as the encoded value at ``key`` behind the cache's back."""

    def __call__(self, cache: CachePort, key: str, body: bytes = NOT_JSON) -> None: ...


@attrs.frozen
class CacheBackend:
    """How to build one cache adapter for a test, and how to damage a value it stores.

    ``build(fixture, clock)`` returns a fresh, empty cache private to the test (a unique prefix
    on a shared server) whose time is ``clock``'s; ``corrupt(cache, key, body)`` stores
    ``body`` (by default bytes that are not JSON) as the encoded value at ``key``, as another
    program could.
    """

    build: Callable[[FixtureLookup, ManualClock], CachePort]
    corrupt: Corrupt
    marks: tuple[pytest.MarkDecorator, ...] = ()


def unique_prefix(stem: str = "t") -> str:
    """A cache/queue key prefix no other test uses (tests share one redis-server)."""
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def redis_cache(url: str, clock: ManualClock | None, prefix: str | None = None) -> RedisCache:
    """A RedisCache on ``url`` through the project's one connection factory."""
    client = connect(RedisSettings(url=url, client_name="foundry-tests"))
    return RedisCache(client, prefix or unique_prefix(), clock=clock)


def _corrupt_memory_cache(cache: CachePort, key: str, body: bytes = NOT_JSON) -> None:
    assert isinstance(cache, MemoryCache)
    # Reaching into the store is the memory twin of writing garbage into a Redis key.
    cache._c.entries.put("v\x1f" + key, body, None)


def _corrupt_redis_cache(cache: CachePort, key: str, body: bytes = NOT_JSON) -> None:
    assert isinstance(cache, RedisCache)
    cache._c.client.set(cache._c.keys.value(key), b"0:" + body)


def _postgres_cache(fixture: FixtureLookup, clock: ManualClock) -> CachePort:
    """On the session's migrated database and pool (``postgres_cache_pool``), a prefix apart."""
    pool, settings = fixture("postgres_cache_pool")
    return PostgresCache(pool, settings, unique_prefix("c"), clock=clock)


def _corrupt_postgres_cache(cache: CachePort, key: str, body: bytes = NOT_JSON) -> None:
    assert isinstance(cache, PostgresCache)
    core = cache._c
    with core.connection(key) as conn:  # opens the pool on first use, as every operation
        conn.execute(
            f'INSERT INTO "{core.settings.schema}".cache_values (prefix, key, value) '
            "VALUES (%s, %s, %s)",
            (core.prefix, ":" + key, body),
        )


CACHE_BACKENDS: dict[str, CacheBackend] = {
    "memory": CacheBackend(lambda _, clock: MemoryCache(clock), _corrupt_memory_cache),
    "redis": CacheBackend(
        lambda fixture, clock: redis_cache(fixture("redis_url"), clock),
        _corrupt_redis_cache,
        (pytest.mark.redis,),
    ),
    "redis-acl": CacheBackend(
        lambda fixture, clock: redis_cache(
            fixture("redis_acl_url"), clock, f"foundry_cache:{unique_prefix('c')}"
        ),
        _corrupt_redis_cache,
        (pytest.mark.redis,),
    ),
    "redis-sentinel": CacheBackend(
        lambda fixture, clock: redis_cache(fixture("redis_sentinel_url"), clock),
        _corrupt_redis_cache,
        (pytest.mark.redis,),
    ),
    "redis-cluster": CacheBackend(
        lambda fixture, clock: redis_cache(fixture("redis_cluster_url"), clock),
        _corrupt_redis_cache,
        (pytest.mark.redis,),
    ),
    "postgres": CacheBackend(_postgres_cache, _corrupt_postgres_cache, (pytest.mark.postgres,)),
}


# -- helpers the suites share -----------------------------------------------------------------

LEASE = timedelta(seconds=30)
MS = timedelta(milliseconds=1)


def job(name: str = "task", **fields: Any) -> Job:
    """A job with defaults a test does not care about."""
    return Job(name, **fields)


def state_of(queue: Queue, job_id: str) -> JobState | None:
    """The job's state, or None if the queue does not know it."""
    record = queue.get(job_id)
    return None if record is None else record.state


class RequeuedOnRead(MemoryQueue):
    """A memory queue where another operator requeues each dead letter right after it is
    read: the moment between an admin tool's look at a letter and its action on it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.requeued: list[str] = []  # every id requeued behind the reader's back

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The record as it was; the letter is ready again when this returns."""
        record = super().get(job_id, queue)
        if record is not None and record.state is JobState.DEAD:
            self.requeue_dead(record.job.queue, [job_id])
            self.requeued.append(job_id)
        return record


def run_while_advancing(
    clock: ManualClock,
    target: Callable[[], Any],
    step: timedelta = timedelta(seconds=1),
    max_steps: int = 2000,
) -> Any:
    """Run ``target`` in a thread, moving ``clock`` by ``step`` every few ms until it returns.

    For code that waits against the clock (lock timeouts, remember's wait): the test decides
    how time passes, and never asserts how long anything took in real time.
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", target()))
        except BaseException as error:  # handed back to the test thread
            outcome.append(("error", error))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    for _ in range(max_steps):
        worker.join(0.005)
        if not worker.is_alive():
            break
        clock.advance(step)
    worker.join(5)
    assert outcome, f"still running after the clock moved {max_steps} x {step}"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value
