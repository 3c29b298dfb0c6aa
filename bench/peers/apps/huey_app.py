"""Huey: ``RedisHuey`` (blocking dequeue, its default), ``huey_consumer -w 2 -k process``."""

from typing import Any

from huey import RedisHuey

from bench.peers.apps import REDIS_URL
from bench.peers.bodies import BODIES

huey = RedisHuey("bench", url=REDIS_URL)
TASKS: dict[str, Any] = {name: huey.task(name=name)(body) for name, body in BODIES.items()}


def send(body: str, kwargs: dict[str, Any]) -> None:
    """``task(**kwargs)``: Huey's enqueue."""
    TASKS[body](**kwargs)
