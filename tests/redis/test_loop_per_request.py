"""The asyncio producer under WSGI, where each request to an async view runs in an event loop
of its own (asgiref's ``async_to_sync``, ``asyncio.run``): the connections a request's loop
opened are closed when that loop ends, not left to the garbage collector, and the next
request's loop works on fresh ones."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path

import foundry
from foundry.contrib.django import project
from tests.backends import unique_prefix
from tests.commit_support import configure_django
from tests.e2e.apps import add, registry
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup, SentinelGroup, SentinelProcess

pytestmark = pytest.mark.redis

REQUESTS = 12


def _clients(*servers: RedisServer | SentinelProcess, established: bool = False) -> int:
    """The sockets this process holds open to the servers (counted on this side: a socket
    closed is gone at once, where a server may not have read its end yet); ``established``:
    only those whose connection was not ended."""
    ports = {server.port for server in servers}
    return sum(
        1
        for socket in psutil.Process().net_connections("tcp")
        if socket.raddr
        and socket.raddr.port in ports
        and (socket.status == psutil.CONN_ESTABLISHED or not established)
    )


@pytest.fixture
def server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
def resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised while the test runs, every ``ResourceWarning`` among them (a
    socket, transport or redis-py connection collected unclosed: the test collects garbage
    before it reads them, see ``_unclosed``). Earlier tests' garbage is collected first: its
    sockets may name this test's port, which a stopped server of theirs had."""
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield caught


def _unclosed(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(warning.message) for warning in caught if warning.category is ResourceWarning]


async def _signup(request: HttpRequest) -> JsonResponse:
    dispatcher = project.async_dispatcher()
    job_id = await dispatcher.dispatch(add, {"a": 1, "b": 2})
    if "wait" in request.GET:
        with contextlib.suppress(foundry.ResultTimeout):  # no worker runs it
            await dispatcher.result(job_id, timeout=0.01)
    return JsonResponse({"job": job_id})


urlpatterns = [path("signup", _signup)]


def _django_requests(server: RedisServer, query: str) -> list[str]:
    from django.test import Client, override_settings  # noqa: PLC0415 - needs the settings

    configure_django()
    wanted = {"APP": "tests.e2e.apps:registry", "REDIS_URL": server.url}
    with override_settings(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        FOUNDRY={**wanted, "QUEUE_PREFIX": unique_prefix("wsgi")},
    ):
        client = Client(raise_request_exception=True)
        answers = [client.get(f"/signup{query}") for _ in range(REQUESTS)]
        jobs = [answer.json()["job"] for answer in answers]
        project.connection().close()
    return jobs


def test_django_async_views_under_wsgi_leave_no_connection_of_their_loops_open(
    server: RedisServer, resource_warnings: list[warnings.WarningMessage]
) -> None:
    jobs = _django_requests(server, "")
    left_open = _clients(server)
    gc.collect()

    assert len(set(jobs)) == REQUESTS
    assert left_open == 0
    assert _unclosed(resource_warnings) == []


def test_django_async_views_under_wsgi_wait_for_results_request_after_request(
    server: RedisServer, resource_warnings: list[warnings.WarningMessage]
) -> None:
    jobs = _django_requests(server, "?wait")
    left_open = _clients(server)
    gc.collect()

    assert len(set(jobs)) == REQUESTS
    assert left_open == 0
    assert _unclosed(resource_warnings) == []


def test_flask_async_views_leave_no_connection_of_their_loops_open(
    server: RedisServer, resource_warnings: list[warnings.WarningMessage]
) -> None:
    from flask import Flask  # noqa: PLC0415

    from foundry.contrib.flask import Foundry  # noqa: PLC0415

    app = Flask(__name__)
    app.config["FOUNDRY"] = {"REDIS_URL": server.url, "QUEUE_PREFIX": unique_prefix("wsgi")}
    jobs = Foundry(registry, app=app)
    with app.app_context():
        connection = jobs.connection
    dispatcher = connection.async_dispatcher(registry)

    @app.post("/signup")
    async def signup() -> dict[str, Any]:
        return {"job": await dispatcher.dispatch(add, {"a": 1, "b": 2})}

    client = app.test_client()
    answers = [client.post("/signup").get_json()["job"] for _ in range(REQUESTS)]
    left_open = _clients(server)
    connection.close()
    gc.collect()

    assert len(set(answers)) == REQUESTS
    assert left_open == 0
    assert _unclosed(resource_warnings) == []


def test_one_loop_keeps_its_connection_for_every_call(server: RedisServer) -> None:
    connection = foundry.connect(server.url)
    dispatcher = connection.async_dispatcher(registry)

    async def serve() -> tuple[int, int]:
        for _ in range(REQUESTS):
            await dispatcher.dispatch(add, {"a": 1, "b": 2})
        during = _clients(server)
        await connection.aclose()
        return during

    during = asyncio.run(serve())

    assert (during, _clients(server)) == (1, 0)


def test_a_loop_per_request_on_a_cluster_leaves_no_connection_of_its_loops_open(
    redis_cluster: RedisClusterGroup, resource_warnings: list[warnings.WarningMessage]
) -> None:
    settings = foundry.Settings(redis_url=redis_cluster.url(), queue_prefix=unique_prefix("c"))
    connection = foundry.connect(settings)
    dispatcher = connection.async_dispatcher(registry)
    before = _clients(*redis_cluster.nodes)  # other tests of this process share the cluster

    async def request() -> str:
        return await dispatcher.dispatch(add, {"a": 1, "b": 2})

    jobs = [asyncio.run(request()) for _ in range(REQUESTS)]
    after = _clients(*redis_cluster.nodes)
    connection.close()
    gc.collect()

    assert len(set(jobs)) == REQUESTS
    assert after == before
    assert _unclosed(resource_warnings) == []


def test_a_loop_per_request_behind_sentinel_leaves_no_connection_of_its_loops_open(
    redis_sentinel: SentinelGroup, resource_warnings: list[warnings.WarningMessage]
) -> None:
    group = [*redis_sentinel.sentinels, redis_sentinel.master, redis_sentinel.replica]
    settings = foundry.Settings(redis_url=redis_sentinel.url(), queue_prefix=unique_prefix("s"))
    connection = foundry.connect(settings)
    dispatcher = connection.async_dispatcher(registry)
    gc.collect()
    before = _clients(*group)  # the session's sentinels serve other tests of this process

    async def request() -> str:
        return await dispatcher.dispatch(add, {"a": 1, "b": 2})

    jobs = [asyncio.run(request()) for _ in range(REQUESTS)]
    after = _clients(*group)
    connection.close()
    gc.collect()

    assert len(set(jobs)) == REQUESTS
    assert after == before
    assert _unclosed(resource_warnings) == []


def test_a_loop_closed_without_being_shut_down_has_its_connection_ended_by_the_next_loop(
    server: RedisServer,
) -> None:
    connection = foundry.connect(server.url)
    dispatcher = connection.async_dispatcher(registry)
    seen = []
    for _ in range(3):
        loop = asyncio.new_event_loop()  # closed below without shutdown_asyncgens
        loop.run_until_complete(dispatcher.dispatch(add, {"a": 1, "b": 2}))
        loop.close()
        seen.append(_clients(server, established=True))
    connection.close()
    gc.collect()  # the socket objects of the ended connections

    assert seen == [1, 1, 1]  # each loop's connection ended once the next one opened its own
