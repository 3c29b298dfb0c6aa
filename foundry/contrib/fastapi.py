"""Foundry in a FastAPI (or Starlette) app (extra ``foundry[fastapi]``).

``lifespan(registry)`` opens the asyncio producer when the app starts and, when it stops,
waits for the jobs handed over at commits and closes the clients; ``dispatcher`` and ``cache``
are dependencies that hand them to an endpoint::

    from foundry.contrib.fastapi import Dispatcher, lifespan

    app = FastAPI(lifespan=lifespan(registry))

    @app.post("/signup")
    async def signup(dispatcher: Dispatcher) -> dict[str, str]:
        return {"job": await dispatcher.dispatch(send_welcome, {"user_id": 7})}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request

import foundry


def lifespan(
    registry: foundry.JobRegistry,
    *,
    settings: foundry.Settings | str | None = None,
    commit_hooks: foundry.CommitHooks | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """The app's lifespan: ``foundry.connect(settings)`` (the environment by default; settings
    or a URL, as ``connect`` takes them) and an ``AsyncDispatcher`` for ``registry`` in
    ``app.state`` and the lifespan's state (so apps mounted in this one have them), closed
    when the app stops."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        connection = foundry.connect(settings)
        producer = connection.async_dispatcher(registry, commit_hooks=commit_hooks)
        app.state.foundry_connection = connection
        app.state.foundry_dispatcher = producer
        try:
            # Also the lifespan's state, which every request's ``request.state`` starts
            # from: an app mounted in this one (whose own lifespan never runs) finds it too.
            yield {"foundry_connection": connection, "foundry_dispatcher": producer}
        finally:
            await producer.flush()
            await connection.aclose()

    return run


def dispatcher(request: Request) -> foundry.AsyncDispatcher:
    """Dependency: the app's ``AsyncDispatcher``."""
    found: foundry.AsyncDispatcher = _state(request, "foundry_dispatcher")
    return found


def cache(request: Request) -> foundry.CachePort:
    """Dependency: the configured cache. Its calls block: use it from ``def`` endpoints,
    which FastAPI runs in its thread pool."""
    connection: foundry.Connection = _state(request, "foundry_connection")
    return connection.cache


def _state(request: Request, name: str) -> Any:
    try:
        return getattr(request.state, name)
    except AttributeError:
        pass
    try:
        return getattr(request.app.state, name)
    except AttributeError:
        raise foundry.ConfigurationError(
            "Foundry's lifespan has not run for this app: build it with "
            "FastAPI(lifespan=lifespan(registry)), lifespan imported from "
            "foundry.contrib.fastapi (a TestClient runs "
            "the lifespan only inside `with TestClient(app) as client:`)"
        ) from None


#: ``dispatcher: Dispatcher`` in an endpoint's parameters.
Dispatcher = Annotated[foundry.AsyncDispatcher, Depends(dispatcher)]
#: ``cache: Cache`` in a ``def`` endpoint's parameters.
Cache = Annotated[foundry.CachePort, Depends(cache)]
