"""A schema that was never migrated: every queue call, sync or async, in a pooled connection
or in the caller's, says to run ``foundry migrate`` instead of passing the server's error on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from foundry.adapters.postgres.async_queue import AsyncPostgresQueue
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool
from foundry.adapters.postgres.errors import SchemaOutdated
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job
from foundry.entrypoints.cli import cli
from foundry.ports import ClaimRequest
from tests.postgres_server import unique_name

pytestmark = pytest.mark.postgres

NOT_MIGRATED = r"Foundry's schema '\w+' is not there or older than this Foundry needs; run foundry"


@pytest.fixture
def settings(postgres_url: str) -> PostgresSettings:
    return PostgresSettings(postgres_url, schema=unique_name("s_"))


@pytest.fixture
def queue(settings: PostgresSettings) -> Iterator[PostgresQueue]:
    made = PostgresQueue(open_pool(settings), settings)
    yield made
    made.close()


CALLS: dict[str, Callable[[PostgresQueue], Any]] = {
    "enqueue": lambda queue: queue.enqueue(Job("task")),
    "claim": lambda queue: queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30))),
    "get": lambda queue: queue.get("some-id"),
    "stats": lambda queue: queue.stats("default"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_queue_call_on_an_unmigrated_schema_says_to_migrate(
    queue: PostgresQueue, call: str
) -> None:
    with pytest.raises(SchemaOutdated, match=NOT_MIGRATED):
        CALLS[call](queue)


def test_an_enqueue_in_the_callers_transaction_says_to_migrate(
    queue: PostgresQueue, settings: PostgresSettings
) -> None:
    with psycopg.connect(settings.url) as conn, pytest.raises(SchemaOutdated, match=NOT_MIGRATED):
        queue.enqueue_within(conn, [Job("task")])


def test_the_async_queue_says_to_migrate(settings: PostgresSettings) -> None:
    async def enqueue() -> None:
        queue = AsyncPostgresQueue(settings)
        try:
            await queue.enqueue(Job("task"))
        finally:
            await queue.aclose()

    with pytest.raises(SchemaOutdated, match=NOT_MIGRATED):
        asyncio.run(enqueue())


def test_foundry_enqueue_exits_2_saying_to_migrate(settings: PostgresSettings) -> None:
    env = {
        "QUEUE_DRIVER": "postgres",
        "DATABASE_URL": settings.url,
        "DATABASE_SCHEMA": settings.schema,
    }
    app = "foundry.entrypoints.demo.app:registry"

    payload = '{"ledger": "/nowhere", "key": "k", "failures": 0}'
    command = ["enqueue", "demo.flaky", "--payload", payload, "--app", app]

    result = CliRunner().invoke(cli, command, env=env)

    assert result.exit_code == 2, result.output
    assert "run foundry migrate" in result.stderr
