"""``foundry.connect()``: everything a producer needs, built from the environment or settings."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType

from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.entrypoints.container import Container, build_container
from foundry.entrypoints.settings import Driver, Settings
from foundry.ports import CachePort, QueuePort

#: Logged once, at the first dispatch, by a producer whose queue lives in its own memory.
MEMORY_QUEUE_WARNING = (
    "job {job_id} went to this process's in-memory queue (no REDIS_URL, QUEUE_DRIVER unset "
    "or 'memory'): no worker in another process sees it, and it is lost when this process "
    "exits. Set REDIS_URL (or QUEUE_DRIVER=redis) to dispatch to Redis."
)


class Connection:
    """A producer's view of Foundry: the queue, the cache and dispatchers over them.

    Clients are opened on first use and closed by ``close()`` (or by leaving a ``with``
    block). Build one per process, at startup, and share it.
    """

    def __init__(self, settings: Settings, container: Container | None = None) -> None:
        self.settings = settings
        self._container = container or build_container(settings)
        self._opened: list[str] = []

    @cached_property
    def queue(self) -> QueuePort:
        """The ``QueuePort`` of the configured driver."""
        self._opened.append("queue")
        return self._container.queue()

    @cached_property
    def cache(self) -> CachePort:
        """The ``CachePort`` of the configured driver."""
        self._opened.append("cache")
        return self._container.cache()

    def dispatcher(self, registry: JobRegistry) -> Dispatcher:
        """A ``Dispatcher`` for ``registry``'s handlers over this connection's queue."""
        memory = self.settings.queue_driver is Driver.MEMORY
        return Dispatcher(
            self.queue,
            registry,
            self._container.clock(),
            first_dispatch_warning=MEMORY_QUEUE_WARNING if memory else None,
        )

    def close(self) -> None:
        """Close the Redis clients this connection opened (memory adapters need nothing)."""
        drivers = {"queue": self.settings.queue_driver, "cache": self.settings.cache_driver}
        clients = {"queue": self._container.queue_client, "cache": self._container.cache_client}
        for port in self._opened:
            if drivers[port] is Driver.REDIS:
                clients[port]().close()
        self._opened.clear()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def connect(settings: Settings | None = None) -> Connection:
    """A ``Connection`` from ``settings``, or from the environment (``Settings.from_env()``).

    Raises ``ConfigurationError`` naming the variable when the environment holds a bad value.
    """
    return Connection(settings or Settings.from_env())
