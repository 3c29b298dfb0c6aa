"""A producer whose role lacks the grants on Foundry's schema: every call, sync or async, in a
pooled connection or in the caller's, and the cache's, raises ``MissingPrivileges`` with the
GRANT statements instead of passing the server's error on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import psycopg
import pytest

from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.errors import MissingPrivileges
from foundry.adapters.postgres.migrator import Migrator
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job
from foundry.ports import ClaimRequest
from tests.postgres_server import ThrowawayRole, unique_name

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(postgres_url: str) -> Iterator[PostgresSettings]:
    schema = unique_name("s_")
    Migrator(partial(connect, PostgresSettings(postgres_url, schema=schema)), schema).migrate()
    role = ThrowawayRole(postgres_url).create()
    yield PostgresSettings(role.url(), schema=schema)
    role.drop()


def _grants(settings: PostgresSettings) -> str:
    return f'GRANT USAGE ON SCHEMA "{settings.schema}" TO "{settings.url.split("@")[0][13:]}"'


CALLS: dict[str, Callable[[PostgresQueue], Any]] = {
    "enqueue": lambda queue: queue.enqueue(Job("task")),
    "claim": lambda queue: queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30))),
    "get": lambda queue: queue.get("some-id"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_queue_call_by_a_role_without_grants_names_them(
    settings: PostgresSettings, call: str
) -> None:
    queue = PostgresQueue(open_pool(settings), settings)
    try:
        with pytest.raises(MissingPrivileges, match="GRANT USAGE ON SCHEMA") as refused:
            CALLS[call](queue)
    finally:
        queue.close()

    assert _grants(settings) in str(refused.value)


def test_an_enqueue_in_the_callers_transaction_names_the_grants(
    settings: PostgresSettings,
) -> None:
    queue = PostgresQueue(open_pool(settings), settings)
    try:
        with (
            psycopg.connect(settings.url) as conn,
            pytest.raises(MissingPrivileges, match="GRANT USAGE ON SCHEMA"),
        ):
            queue.enqueue_within(conn, [Job("task")])
    finally:
        queue.close()


def test_the_async_queue_names_the_grants(settings: PostgresSettings) -> None:
    async def enqueue() -> None:
        queue = AsyncPostgresQueue(settings)
        try:
            await queue.enqueue(Job("task"))
        finally:
            await queue.aclose()

    with pytest.raises(MissingPrivileges, match="GRANT USAGE ON SCHEMA"):
        asyncio.run(enqueue())


def test_the_cache_names_the_grants(settings: PostgresSettings) -> None:
    pool = open_pool(settings)
    try:
        with pytest.raises(MissingPrivileges, match="GRANT USAGE ON SCHEMA"):
            PostgresCache(pool, settings).get("k")
    finally:
        pool.close()
