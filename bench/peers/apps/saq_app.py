"""SAQ: ``Queue.from_url``, ``saq bench.peers.apps.saq_app.settings --workers 2``."""

from collections.abc import Awaitable, Callable
from typing import Any

from saq import Queue

from bench.peers.apps import REDIS_URL
from bench.peers.bodies import BODIES

queue = Queue.from_url(REDIS_URL)


def _function(name: str, body: Callable[..., None]) -> Callable[..., Awaitable[None]]:
    async def run(_ctx: Any, **kwargs: Any) -> None:
        body(**kwargs)

    run.__name__ = run.__qualname__ = name  # SAQ finds a function by its name
    return run


settings = {"queue": queue, "functions": [_function(n, b) for n, b in BODIES.items()]}


async def start() -> None:
    """Connect before the timed sends."""
    await queue.connect()


async def send(body: str, kwargs: dict[str, Any]) -> None:
    """``await queue.enqueue(name, **kwargs)``: SAQ's enqueue."""
    await queue.enqueue(body, **kwargs)
