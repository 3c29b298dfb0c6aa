"""Dramatiq: ``RedisBroker``, ``dramatiq bench.peers.apps.dramatiq_app --processes 2``."""

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers.apps import REDIS_URL
from bench.peers.bodies import BODIES

broker = RedisBroker(url=REDIS_URL)
dramatiq.set_broker(broker)
ACTORS: dict[str, Any] = {
    name: dramatiq.actor(body, actor_name=name, broker=broker) for name, body in BODIES.items()
}


def send(body: str, kwargs: dict[str, Any]) -> None:
    """``actor.send_with_options(kwargs=...)``: Dramatiq's enqueue."""
    ACTORS[body].send_with_options(kwargs=kwargs)
