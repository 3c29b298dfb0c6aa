"""taskiq with taskiq-redis's ``ListQueueBroker``; ``taskiq worker --workers 2``.

The tasks are ``async def`` (taskiq's usual form) calling the shared body inline, as SAQ's do.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from taskiq_redis import ListQueueBroker

from bench.peers.apps import REDIS_URL
from bench.peers.bodies import BODIES

broker = ListQueueBroker(url=REDIS_URL)


def _task(body: Callable[..., None]) -> Callable[..., Awaitable[None]]:
    async def run(**kwargs: Any) -> None:
        body(**kwargs)

    return run


TASKS: dict[str, Any] = {
    name: broker.task(task_name=name)(_task(body)) for name, body in BODIES.items()
}


async def start() -> None:
    """The producer side's ``broker.startup()``."""
    await broker.startup()


async def send(body: str, kwargs: dict[str, Any]) -> None:
    """``await task.kiq(**kwargs)``: taskiq's enqueue."""
    await TASKS[body].kiq(**kwargs)
