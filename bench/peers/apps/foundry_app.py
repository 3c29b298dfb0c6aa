"""Foundry at its default settings: ``foundry work --app bench.peers.apps.foundry_app:registry``.

The dispatcher is built the way an application builds it, by the Container from ``Settings``
read from the environment the bench sets (``QUEUE_DRIVER`` redis or postgres, ``REDIS_URL`` /
``DATABASE_URL``, ``QUEUE_PREFIX``).
"""

from typing import Any

from bench.peers.bodies import BODIES
from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Settings

QUEUE = "peers"

registry = JobRegistry()
for _name, _body in BODIES.items():
    registry.job(name=_name, queue=QUEUE)(_body)

_dispatcher: Dispatcher | None = None


def start() -> None:
    """Build the dispatcher and connect before the timed sends."""
    global _dispatcher  # noqa: PLW0603 - one dispatcher per producer process
    _dispatcher = Dispatcher(build_container(Settings.from_env()).queue(), registry, SystemClock())


def setup() -> None:
    """On PostgreSQL, create Foundry's tables (``foundry migrate``) in the empty database."""
    settings = Settings.from_env()
    if settings.database_url is not None:
        build_container(settings).migrator().migrate()


def send(body: str, kwargs: dict[str, Any]) -> None:
    """``dispatcher.dispatch(name, kwargs)``: Foundry's enqueue."""
    assert _dispatcher is not None, "start() first"
    _dispatcher.dispatch(body, kwargs or None)


def send_many(body: str, kwargs: dict[str, Any], count: int) -> None:
    """``dispatcher.dispatch_many`` of ``count`` jobs: Foundry's bulk enqueue."""
    assert _dispatcher is not None, "start() first"
    _dispatcher.dispatch_many([(body, kwargs or None)] * count)
