"""DATABASE_SCHEMA's length: the schema names the NOTIFY channels (``foundry_<schema>`` and
``foundry_<schema>_ended``), which PostgreSQL limits to 63 bytes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import psycopg
import pytest
from click.testing import CliRunner

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migrator
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job, JobState
from foundry.entrypoints.cli import cli
from foundry.ports import ClaimRequest, JobRecord

pytestmark = pytest.mark.postgres

LONGEST = "s" + "0123456789abcdef0123456789abcdef0123456789abcdef"  # 49 characters


@pytest.fixture
def queue(postgres_url: str) -> Iterator[PostgresQueue]:
    settings = PostgresSettings(postgres_url, schema=LONGEST)
    Migrator(partial(connect, settings), settings.schema).migrate()
    made = PostgresQueue(open_pool(settings), settings)
    yield made
    made.close()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{LONGEST}" CASCADE')


def test_a_schema_name_too_long_for_its_channels_is_refused_naming_the_limit(
    postgres_url: str,
) -> None:
    env = {"DATABASE_URL": postgres_url, "DATABASE_SCHEMA": LONGEST + "x"}

    result = CliRunner().invoke(cli, ["migrate"], env=env)

    assert result.exit_code == 2, result.output
    assert "1-49" in result.stderr


def test_the_longest_schema_name_enqueues_and_wakes_a_waiter_at_the_jobs_end(
    queue: PostgresQueue, postgres_url: str
) -> None:
    ended: list[JobRecord | None] = []
    queue.enqueue(Job("task", id="long"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
    waiter = threading.Thread(
        target=lambda: ended.append(queue.wait("long", timedelta(seconds=60)))
    )
    waiter.start()
    while not _waiting(postgres_url):
        threading.Event().wait(0.01)

    queue.complete(lease, 7)
    waiter.join(60)

    [record] = ended
    assert record is not None
    assert record.state is JobState.COMPLETED


def _waiting(postgres_url: str) -> bool:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{LONGEST}".waiters').fetchone()
    return bool(row and row[0])
