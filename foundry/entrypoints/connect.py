"""``foundry.connect()``: everything a producer needs, built from the environment or settings."""

from __future__ import annotations

import weakref
from functools import cached_property
from types import TracebackType

from foundry.adapters.redis.connection import close as close_client
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError
from foundry.entrypoints.container import Container, build_container, close_resources
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import AsyncQueuePort, CachePort, CommitHooks, QueuePort

#: Logged once, at the first dispatch, by a producer whose queue lives in its own memory.
MEMORY_QUEUE_WARNING = (
    "job {job_id} went to this process's in-memory queue (no REDIS_URL, QUEUE_DRIVER unset "
    "or 'memory'): no worker in another process sees it, and it is lost when this process "
    "exits. Set REDIS_URL (or QUEUE_DRIVER=redis) to dispatch to Redis."
)


class Connection:
    """A producer's view of Foundry: the queue, the cache and dispatchers over them.

    Clients are opened on first use and closed by ``close()`` (or by leaving a ``with``
    block). Build one per process, at startup, and share it. One dropped without ``close()``
    lets go of its clients when it is collected: its Redis connections are closed (a queue,
    cache or dispatcher taken from it and kept opens them again), and a PostgreSQL pool is
    closed once no queue or cache over it is left.
    """

    def __init__(self, settings: Settings, container: Container | None = None) -> None:
        self.settings = settings
        self._container = container or build_container(settings)
        self._opened: list[str] = []
        built = container is None  # a container given is the giver's to reset
        weakref.finalize(self, _let_go, self._container, settings, self._opened, built)

    @cached_property
    def queue(self) -> QueuePort:
        """The ``QueuePort`` of the configured driver."""
        built = self._container.queue()
        self._opened.append("queue")  # once built: a port that failed has nothing to close
        return built

    @cached_property
    def cache(self) -> CachePort:
        """The ``CachePort`` of the configured driver."""
        built = self._container.cache()
        self._opened.append("cache")  # once built: a port that failed has nothing to close
        return built

    def dispatcher(
        self, registry: JobRegistry, *, commit_hooks: CommitHooks | None = None
    ) -> Dispatcher:
        """A ``Dispatcher`` for ``registry``'s handlers over this connection's queue;
        ``commit_hooks`` (``DjangoCommitHooks()``, ``SqlAlchemyCommitHooks(session)``) let it
        dispatch after the database's commit. On PostgreSQL it also dispatches inside the
        caller's transaction (``connection=``)."""
        memory = self.settings.queue_driver is Driver.MEMORY
        return Dispatcher(
            self.queue,
            registry,
            self._container.clock(),
            first_dispatch_warning=MEMORY_QUEUE_WARNING if memory else None,
            commit_hooks=commit_hooks,
            batches=self._container.batches(),
            transactions=self._container.transactions(),
        )

    @cached_property
    def async_queue(self) -> AsyncQueuePort:
        """The ``AsyncQueuePort`` of the configured driver (use it from one event loop)."""
        built = self._container.async_queue()
        self._opened.append("async_queue")  # once built: a port that failed has nothing to close
        return built

    def async_dispatcher(
        self, registry: JobRegistry, *, commit_hooks: CommitHooks | None = None
    ) -> AsyncDispatcher:
        """An ``AsyncDispatcher`` for ``registry``'s handlers over this connection's
        ``async_queue``: the same methods, jobs and ids as ``dispatcher``'s, awaited."""
        memory = self.settings.queue_driver is Driver.MEMORY
        return AsyncDispatcher(
            self.async_queue,
            registry,
            self._container.clock(),
            first_dispatch_warning=MEMORY_QUEUE_WARNING if memory else None,
            commit_hooks=commit_hooks,
            batches=self._container.async_batches(),
            transactions=self._container.async_transactions(),
        )

    def close(self) -> None:
        """Close the Redis clients and the PostgreSQL pools this connection opened (memory
        adapters need nothing): no connection of theirs is left open, and a port used again
        connects again. One left open is closed when it is collected (see the class), or
        else when the interpreter exits."""
        close_resources(self._container)
        _close_redis(self._container, self.settings, self._opened)

    async def aclose(self) -> None:
        """Close every client this connection opened, the asyncio one included; call it in
        the event loop that used ``async_queue``."""
        if "async_queue" in self._opened:
            await self.async_queue.aclose()
            if self.settings.queue_driver is Driver.REDIS:
                await self._container.async_queue_client().aclose()
            self._opened.remove("async_queue")
        self.close()

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _close_redis(container: Container, settings: Settings, opened: list[str]) -> None:
    """Close the sync Redis clients of the ports in ``opened``, every connection of theirs
    (which forgets them)."""
    drivers = {"queue": settings.queue_driver, "cache": settings.cache_driver}
    clients = {"queue": container.queue_client, "cache": container.cache_client}
    for port in opened:
        if port in drivers and drivers[port] is Driver.REDIS:
            close_client(clients[port]())
    opened[:] = [port for port in opened if port not in drivers]


def _let_go(container: Container, settings: Settings, opened: list[str], built: bool) -> None:
    """A connection collected unclosed: its Redis connections are closed (a client kept by
    something taken from it reconnects on its next call), and the container it ``built``
    forgets what it made (the process's first container keeps its class's providers, and so
    would keep them), so each PostgreSQL pool is closed with the last adapter over it
    (``OpenedPools.used_by``) and the asyncio client's connections with their loops."""
    _close_redis(container, settings, opened)
    if built:
        container.reset_singletons()


def connect(settings: Settings | str | None = None) -> Connection:
    """A ``Connection`` from ``settings``, or from the environment (``Settings.from_env()``).

    A URL puts the queue and the cache on that server, the other settings coming from the
    environment: ``connect("redis://127.0.0.1:6379/0")`` (any form ``REDIS_URL`` takes),
    ``connect("postgresql://app@db/app")`` or ``connect("memory://")``.

    Raises ``ConfigurationError`` naming the variable when a value is bad.
    """
    if settings is None:
        return Connection(Settings.from_env())
    if isinstance(settings, str):
        return Connection(Settings.from_env().on(settings))
    if not isinstance(settings, Settings):
        raise ConfigurationError(
            f"connect() takes foundry.Settings(...) or a URL such as "
            f"'redis://127.0.0.1:6379/0', not a {type(settings).__name__}"
        )
    return Connection(settings)
