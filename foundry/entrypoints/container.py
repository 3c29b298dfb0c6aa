"""The Container: the one composition root, where adapters are chosen and built.

Configuration flows one way: environment -> ``Settings`` -> ``Container.config`` -> providers
-> ports handed to application services. One container per process. Tests override
providers (``container.queue.override(providers.Object(MemoryQueue(clock)))``), never patch.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
import weakref
from collections.abc import Callable
from functools import cache, partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.codec import Codec
from foundry.adapters.redis.connection import connect, connect_async
from foundry.adapters.redis.health import RedisReport, inspect_redis
from foundry.adapters.redis.queue import RedisQueue
from foundry.entrypoints.injection import containers, providers
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import (
    AsyncBatchPort,
    AsyncQueuePort,
    BatchPort,
    CachePort,
    QueuePort,
    SchedulePort,
    WorkerRegistry,
)

if TYPE_CHECKING:
    import importlib.abc

    from psycopg_pool import ConnectionPool

    from foundry.adapters.memory import MemoryQueue
    from foundry.adapters.memory.async_queue import AsyncMemoryQueue
    from foundry.adapters.memory.cache import MemoryCache
    from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
    from foundry.adapters.postgres.cache import PostgresCache
    from foundry.adapters.postgres.config import PostgresSettings
    from foundry.adapters.postgres.health import PostgresReport
    from foundry.adapters.postgres.migrator import Migrator
    from foundry.adapters.postgres.queue import PostgresQueue
    from foundry.adapters.redis.async_queue import AsyncRedisQueue
    from foundry.adapters.redis.cache import RedisCache

Used = TypeVar("Used")

# The adapters a process may not use are imported when first built (a Redis worker never
# loads the memory queue or either cache): every module imported costs startup time.


def _memory_queue(**options: Any) -> MemoryQueue:
    from foundry.adapters.memory import MemoryQueue  # noqa: PLC0415

    return MemoryQueue(**options)


def _memory_cache(**options: Any) -> MemoryCache:
    from foundry.adapters.memory.cache import MemoryCache  # noqa: PLC0415

    return MemoryCache(**options)


def _redis_cache(**options: Any) -> RedisCache:
    from foundry.adapters.redis.cache import RedisCache  # noqa: PLC0415

    return RedisCache(**options)


def _async_memory_queue(queue: MemoryQueue) -> AsyncMemoryQueue:
    from foundry.adapters.memory.async_queue import AsyncMemoryQueue  # noqa: PLC0415

    return AsyncMemoryQueue(queue)


def _async_redis_queue(**options: Any) -> AsyncRedisQueue:
    from foundry.adapters.redis.async_queue import AsyncRedisQueue  # noqa: PLC0415

    return AsyncRedisQueue(**options)


class OpenedPools:
    """The PostgreSQL pools this process built, closed together when its command ends: a pool
    left to the garbage collector stops its threads from whichever thread collects it.

    Any still open when the interpreter exits (a producer's ``foundry.connect()`` never
    closed) are closed then, before the interpreter tears down: a pool collected during
    shutdown waits seconds for each of its threads and warns."""

    def __init__(self) -> None:
        self._pools: list[ConnectionPool] = []
        self._users: dict[int, PoolUsers] = {}

    def add(self, pool: ConnectionPool) -> ConnectionPool:
        """Remember ``pool``, to close at exit if no one did; return it."""
        self._pools.append(pool)
        self._users[id(pool)] = PoolUsers(pool)
        _close_at_exit(pool)
        return pool

    def used_by(self, pool: ConnectionPool, user: Used) -> Used:
        """``user``, an adapter over ``pool`` (one of these pools): the pool is closed once
        every adapter over it was collected (a ``foundry.connect()`` dropped unclosed)."""
        self._users[id(pool)].add(user)
        return user

    def close(self) -> None:
        """Close every pool remembered (their connections and worker threads); in a process
        forked since, the pools it used instead (its parent's connections are left alone)."""
        if not self._pools:
            return
        from foundry.adapters.postgres.connection import own  # noqa: PLC0415 - made one

        while self._pools:
            own(self._pools.pop()).close()


class PoolUsers:
    """The adapters over one pool, which is closed once the last of them was collected: a
    pool holds connections (and threads) that nothing could use any more, and collected
    itself, it would stop its threads from whichever thread collects it."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._pid = os.getpid()
        self._count = 0

    def add(self, user: object) -> None:
        """Count ``user`` until it is collected."""
        self._count += 1
        weakref.finalize(user, self._left)

    def _left(self) -> None:
        self._count -= 1
        # A forked child's copies of the adapters leave its parent's pool alone.
        if self._count == 0 and self._pid == os.getpid() and not self._pool.closed:
            if threading.current_thread().name.startswith(f"{self._pool.name}-"):
                # Collected on one of the pool's own threads, which close() joins.
                threading.Thread(target=self._pool.close, name="pool-closer").start()
            else:
                self._pool.close()


#: Pools to close at exit, each with the process that opened it (a forked child leaves its
#: parent's alone: closing one there would end the parent's sessions on the shared sockets).
_EXIT_POOLS: weakref.WeakKeyDictionary[ConnectionPool, int] = weakref.WeakKeyDictionary()


def _close_at_exit(pool: ConnectionPool) -> None:
    _register_exit_hook()
    _EXIT_POOLS[pool] = os.getpid()


@cache
def _register_exit_hook() -> None:
    atexit.register(_close_pools_left_open)


def _close_pools_left_open() -> None:
    for pool, pid in list(_EXIT_POOLS.items()):
        if pid == os.getpid() and not pool.closed:
            pool.close()
    _EXIT_POOLS.clear()


def _postgres_pool(settings: PostgresSettings, opened: OpenedPools) -> ConnectionPool:
    from foundry.entrypoints.extras import require  # noqa: PLC0415

    require("postgres", "QUEUE_DRIVER / CACHE_DRIVER=postgres", "psycopg", "psycopg_pool")
    from foundry.adapters.postgres.connection import open_pool  # noqa: PLC0415

    return opened.add(open_pool(settings))


def _postgres_cache(opened: OpenedPools, **options: Any) -> PostgresCache:
    from foundry.adapters.postgres.cache import PostgresCache  # noqa: PLC0415

    return opened.used_by(options["pool"], PostgresCache(**options))


def _postgres_queue(
    pool: ConnectionPool, settings: PostgresSettings, codec: Codec, opened: OpenedPools
) -> PostgresQueue:
    from foundry.adapters.postgres.queue import PostgresQueue  # noqa: PLC0415

    return opened.used_by(pool, PostgresQueue(pool, settings, codec=codec))


def _async_postgres_queue(settings: PostgresSettings, codec: Codec) -> AsyncPostgresQueue:
    from foundry.entrypoints.extras import require  # noqa: PLC0415

    require("postgres", "QUEUE_DRIVER=postgres", "psycopg")
    from foundry.adapters.postgres.async_queue import AsyncPostgresQueue  # noqa: PLC0415

    return AsyncPostgresQueue(settings, codec=codec)


def _migrator(settings: PostgresSettings) -> Migrator:
    from foundry.entrypoints.extras import require  # noqa: PLC0415

    require("postgres", "foundry migrate", "psycopg")
    from foundry.adapters.postgres.connection import connect  # noqa: PLC0415
    from foundry.adapters.postgres.migrator import Migrator  # noqa: PLC0415

    return Migrator(partial(connect, settings), settings.schema)


def _postgres_check(settings: Settings) -> Callable[[], PostgresReport] | None:
    """The PostgreSQL self-check (server, schema version, privileges) when a port is on
    PostgreSQL: ``foundry check`` shows it, ``foundry work`` refuses to start on a schema
    older than its Foundry or a role without the privileges."""
    if Driver.POSTGRES not in (settings.queue_driver, settings.cache_driver):
        return None
    from foundry.entrypoints.extras import require  # noqa: PLC0415

    require("postgres", "QUEUE_DRIVER / CACHE_DRIVER=postgres", "psycopg")
    from foundry.adapters.postgres.health import inspect_postgres, used_by  # noqa: PLC0415

    queue, cache = (
        driver is Driver.POSTGRES for driver in (settings.queue_driver, settings.cache_driver)
    )
    tables, sequences = used_by(queue=queue, cache=cache)
    return partial(inspect_postgres, settings.postgres(), tables, sequences)


def _queue_check(queue: RedisQueue) -> Callable[[], RedisReport]:
    return queue.check


def _cache_check(client: redis.Redis) -> Callable[[], RedisReport]:
    return partial(inspect_redis, client, serving="cache")


class Container(containers.DeclarativeContainer):
    """Providers for every port; ``QUEUE_DRIVER`` / ``CACHE_DRIVER`` pick the adapters."""

    config = providers.Configuration(strict=True)
    settings = providers.Object(Settings())

    clock = providers.Singleton(SystemClock)
    codec = providers.Singleton(Codec)

    # The lease and what follows from it (renewals, the queue client's timeouts): one owner.
    queue_timing = providers.Callable(Settings.queue_timing, settings)
    queue_client = providers.Singleton(connect, providers.Callable(Settings.queue_redis, settings))
    cache_client = providers.Singleton(connect, providers.Callable(Settings.cache_redis, settings))
    # PostgreSQL (QUEUE_DRIVER / CACHE_DRIVER=postgres): one pool for both ports.
    postgres_settings = providers.Callable(Settings.postgres, settings)
    opened_pools = providers.Singleton(OpenedPools)
    postgres_pool = providers.Singleton(_postgres_pool, postgres_settings, opened_pools)
    migrator = providers.Factory(_migrator, postgres_settings)
    postgres_check = providers.Callable(_postgres_check, settings)

    queue_backend = providers.Selector(
        config.queue.driver,
        memory=providers.Singleton(_memory_queue, clock=clock, codec=codec),
        redis=providers.Singleton(
            RedisQueue,
            queue_client,
            prefix=config.queue.prefix,
            block_limit=queue_timing.provided.block_limit,
            durability=providers.Callable(Settings.queue_durability, settings),
        ),
        postgres=providers.Singleton(
            _postgres_queue, postgres_pool, postgres_settings, codec, opened_pools
        ),
    )
    queue = providers.Dependency(instance_of=QueuePort, default=queue_backend)  # type: ignore[type-abstract]
    # The asyncio producer's queue: over the memory queue's store, or its own asyncio client.
    async_queue_client = providers.Singleton(
        connect_async, providers.Callable(Settings.queue_redis, settings)
    )
    async_queue_backend = providers.Selector(
        config.queue.driver,
        memory=providers.Singleton(_async_memory_queue, queue),
        redis=providers.Singleton(
            _async_redis_queue,
            client=async_queue_client,
            prefix=config.queue.prefix,
            durability=providers.Callable(Settings.queue_durability, settings),
        ),
        postgres=providers.Singleton(_async_postgres_queue, postgres_settings, codec),
    )
    async_queue = providers.Dependency(instance_of=AsyncQueuePort, default=async_queue_backend)  # type: ignore[type-abstract]
    # The queue that writes jobs in the caller's own transaction (dispatch(connection=...)).
    transactions = providers.Selector(
        config.queue.driver,
        memory=providers.Object(None),
        redis=providers.Object(None),
        postgres=queue,
    )
    async_transactions = providers.Selector(
        config.queue.driver,
        memory=providers.Object(None),
        redis=providers.Object(None),
        postgres=async_queue,
    )
    workers = providers.Dependency(instance_of=WorkerRegistry, default=queue)  # type: ignore[type-abstract]
    schedules = providers.Dependency(instance_of=SchedulePort, default=queue)  # type: ignore[type-abstract]
    # Every queue backend keeps batches.
    batches = providers.Dependency(instance_of=BatchPort, default=queue)  # type: ignore[type-abstract]
    async_batches = providers.Dependency(instance_of=AsyncBatchPort, default=async_queue)  # type: ignore[type-abstract]

    cache_backend = providers.Selector(
        config.cache.driver,
        memory=providers.Singleton(
            _memory_cache, clock=clock, codec=codec, prefix=config.cache.prefix
        ),
        redis=providers.Singleton(
            _redis_cache, client=cache_client, prefix=config.cache.prefix, codec=codec
        ),
        postgres=providers.Singleton(
            _postgres_cache,
            opened_pools,
            pool=postgres_pool,
            settings=postgres_settings,
            prefix=config.cache.prefix,
            codec=codec,
        ),
    )
    cache = providers.Dependency(instance_of=CachePort, default=cache_backend)  # type: ignore[type-abstract]

    # The Redis self-check of each backend (``None`` for memory): `foundry check` and `work`.
    queue_check = providers.Selector(
        config.queue.driver,
        memory=providers.Object(None),
        redis=providers.Callable(_queue_check, queue_backend),
        postgres=providers.Object(None),
    )
    cache_check = providers.Selector(
        config.cache.driver,
        memory=providers.Object(None),
        redis=providers.Callable(_cache_check, cache_client),
        postgres=providers.Object(None),
    )


#: Whether a container took ``Container``'s own providers (see ``_declared``).
_class_taken = False
_taking = threading.Lock()


def _declared() -> type[Container]:
    """A ``Container`` class whose providers no container uses: this module's own for the
    process's first container, else the class statement run anew (this module executed again).

    Instantiating a ``DeclarativeContainer`` deep-copies its class's providers through
    ``copy.deepcopy``, ~10 M instructions of a worker's startup; the process's one container
    takes them as they are, and declaring the class anew costs a later one less than a copy.
    """
    global _class_taken  # noqa: PLW0603 - the class's providers serve one container only
    with _taking:
        if not _class_taken:
            _class_taken = True
            return Container
    module = importlib.util.module_from_spec(__spec__)
    cast("importlib.abc.Loader", __spec__.loader).exec_module(module)
    declared: type[Container] = module.Container
    return declared


def build_container(settings: Settings) -> Container:
    """A container configured from ``settings``."""
    container = cast(Container, containers.DynamicContainer())
    container.set_providers(**_declared().providers)
    container.settings.override(providers.Object(settings))
    container.config.from_dict(
        {
            "queue": {"driver": settings.queue_driver.value, "prefix": settings.queue_prefix},
            "cache": {"driver": settings.cache_driver.value, "prefix": settings.cache_prefix},
        }
    )
    return container


def close_resources(container: Container) -> None:
    """Close what the container opened that needs closing (its PostgreSQL pools)."""
    opened: OpenedPools = container.opened_pools()
    opened.close()


def reinit_per_process(container: Container) -> None:
    """Forget this process's clients and adapters (run in a freshly forked pool child).

    A forked child must not share its parent's sockets; its cache client and adapters are
    rebuilt on first use. Overrides (tests) are kept.
    """
    container.reset_singletons()
