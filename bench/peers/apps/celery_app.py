"""Celery: Redis as broker, no result backend; ``celery worker --concurrency 2`` (prefork)."""

from typing import Any

from celery import Celery

from bench.peers.apps import REDIS_URL
from bench.peers.bodies import BODIES

app = Celery("bench", broker=REDIS_URL)
TASKS: dict[str, Any] = {name: app.task(name=name)(body) for name, body in BODIES.items()}


def send(body: str, kwargs: dict[str, Any]) -> None:
    """``task.delay(**kwargs)``: Celery's enqueue."""
    TASKS[body].delay(**kwargs)
