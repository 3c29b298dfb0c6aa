"""``foundry check`` and ``foundry work`` on PostgreSQL: what they say about the server, the
schema and the role, and the exit codes of what is wrong."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import psycopg
import pytest
from click.testing import CliRunner, Result

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.health import grants, inspect_postgres
from foundry.adapters.postgres.migrator import Migrator, load_migrations
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job, JobState
from foundry.entrypoints.cli import cli
from foundry.ports import ClaimRequest
from tests.postgres_server import ThrowawayRole, unique_name

pytestmark = pytest.mark.postgres

DEMO_APP = "foundry.entrypoints.demo.app:registry"


def foundry(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"QUEUE_DRIVER": "postgres", **env})


@pytest.fixture
def schema() -> str:
    return unique_name("s_")


@pytest.fixture
def role(postgres_url: str) -> Iterator[ThrowawayRole]:
    made = ThrowawayRole(postgres_url).create()
    yield made
    made.drop()


def test_check_reports_the_server_the_schema_and_the_privileges(
    postgres_url: str, schema: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "DATABASE_SCHEMA": schema}
    foundry("migrate", **env)

    result = foundry("check", **env)

    assert result.exit_code == 0, result.output
    assert "PostgreSQL self-check" in result.stdout
    assert "15." in result.stdout or "16." in result.stdout or "17." in result.stdout
    latest = len(load_migrations())
    assert f"{latest} (this Foundry: {latest})" in result.stdout
    assert "ok: configuration valid" in result.stdout


def test_check_on_a_schema_not_migrated_exits_2_saying_run_foundry_migrate(
    postgres_url: str, schema: str
) -> None:
    result = foundry("check", DATABASE_URL=postgres_url, DATABASE_SCHEMA=schema)

    assert result.exit_code == 2
    assert "run foundry migrate" in result.stderr


def test_check_on_a_database_that_does_not_answer_exits_3() -> None:
    result = foundry("check", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")

    assert result.exit_code == 3
    assert "is unreachable" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_a_role_without_privileges_is_refused_with_the_grants_then_works_once_granted(
    postgres_url: str, schema: str, role: ThrowawayRole
) -> None:
    foundry("migrate", DATABASE_URL=postgres_url, DATABASE_SCHEMA=schema)
    env = {"DATABASE_URL": role.url(), "DATABASE_SCHEMA": schema}

    refused_check = foundry("check", **env)
    refused_work = foundry("work", "--app", DEMO_APP, "--burst", **env)

    assert refused_check.exit_code == 2
    assert refused_work.exit_code == 2
    for result in (refused_check, refused_work):
        assert f"the role '{role.name}' lacks USAGE on schema {schema}" in result.stderr
        assert "GRANT USAGE ON SCHEMA" in result.stderr

    settings = PostgresSettings(role.url(), schema=schema)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(grants(inspect_postgres(settings)).encode())

    assert foundry("check", **env).exit_code == 0
    queue = PostgresQueue(open_pool(settings), settings)
    try:
        queue.enqueue(Job("task", id="granted"))
        [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
        queue.complete(lease)
    finally:
        queue.close()
    assert lease.job_id == "granted"


def test_a_role_granted_before_the_batch_tables_keeps_working_after_the_upgrade(
    postgres_url: str, schema: str, role: ThrowawayRole
) -> None:
    settings = PostgresSettings(role.url(), schema=schema)
    older = tuple(m for m in load_migrations() if m.version < _version_of("batches"))
    admin_settings = PostgresSettings(postgres_url, schema=schema)
    Migrator(partial(connect, admin_settings), schema, older).migrate()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(grants(inspect_postgres(settings)).encode())

    foundry("migrate", DATABASE_URL=postgres_url, DATABASE_SCHEMA=schema)

    assert foundry("check", DATABASE_URL=role.url(), DATABASE_SCHEMA=schema).exit_code == 0
    queue = PostgresQueue(open_pool(settings), settings)
    try:
        queue.enqueue(Job("task", id="after-upgrade"))
        [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
        queue.complete(lease)
        assert queue.get("after-upgrade").state is JobState.COMPLETED  # type: ignore[union-attr]
    finally:
        queue.close()


def _version_of(name: str) -> int:
    return next(m.version for m in load_migrations() if m.name == name)


def test_a_command_closes_the_postgres_pool_it_opened_before_it_returns(
    postgres_url: str, schema: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "DATABASE_SCHEMA": schema}
    foundry("migrate", **env)
    before = {thread.ident for thread in threading.enumerate()}

    result = foundry("check", **env)

    assert result.exit_code == 0, result.output
    started = [thread.name for thread in threading.enumerate() if thread.ident not in before]
    assert started == []


@pytest.mark.parametrize("queue_driver", ["memory", "postgres"])
def test_check_with_the_cache_on_postgresql_checks_the_cache_tables_rights(
    postgres_url: str, schema: str, role: ThrowawayRole, queue_driver: str
) -> None:
    foundry("migrate", DATABASE_URL=postgres_url, DATABASE_SCHEMA=schema)
    settings = PostgresSettings(role.url(), schema=schema)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(grants(inspect_postgres(settings)).encode())
        admin.execute(f'REVOKE ALL ON "{schema}".cache_values FROM "{role.name}"'.encode())
    env = {"DATABASE_URL": role.url(), "DATABASE_SCHEMA": schema, "CACHE_DRIVER": "postgres"}

    refused = foundry("check", **{**env, "QUEUE_DRIVER": queue_driver})

    assert refused.exit_code == 2, refused.output
    assert f"lacks SELECT, INSERT, UPDATE, DELETE on {schema}.cache_values" in refused.stderr
