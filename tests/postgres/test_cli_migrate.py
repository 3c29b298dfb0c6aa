"""``foundry migrate`` and the schema check ``foundry work`` runs, through the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner, Result

from foundry.entrypoints.cli import cli
from tests.e2e.test_demo import run_foundry
from tests.postgres_server import ThrowawayRole, unique_name

pytestmark = pytest.mark.postgres

DEMO_APP = "foundry.entrypoints.demo.app:registry"


def foundry(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def env(postgres_url: str) -> dict[str, str]:
    return {"DATABASE_URL": postgres_url, "DATABASE_SCHEMA": unique_name("s_")}


def test_migrate_applies_the_files_then_reports_up_to_date(env: dict[str, str]) -> None:
    first = foundry("migrate", **env)
    second = foundry("migrate", **env)

    assert first.exit_code == 0, first.output
    assert "applied 0001_queue" in first.stdout
    assert second.exit_code == 0, second.output
    assert "up to date" in second.stdout


def test_migrate_check_exits_1_while_migrations_are_pending(env: dict[str, str]) -> None:
    pending = foundry("migrate", "--check", **env)
    foundry("migrate", **env)
    done = foundry("migrate", "--check", **env)

    assert pending.exit_code == 1
    assert "pending: 0001_queue" in pending.stderr
    assert done.exit_code == 0, done.output


def test_migrate_without_a_database_url_exits_2_naming_it() -> None:
    result = foundry("migrate", DATABASE_URL="")

    assert result.exit_code == 2
    assert "DATABASE_URL is not set" in result.stderr


def test_a_postgres_driver_without_a_database_url_exits_2_naming_both() -> None:
    result = foundry("stats", QUEUE_DRIVER="postgres", DATABASE_URL="")

    assert result.exit_code == 2
    assert "QUEUE_DRIVER=postgres needs DATABASE_URL" in result.stderr


def test_migrate_on_an_unreachable_server_exits_3() -> None:
    result = foundry("migrate", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")

    assert result.exit_code == 3
    assert "is unreachable" in result.stderr


def test_an_unreachable_server_is_one_clear_error_without_the_pools_warnings() -> None:
    url = "postgresql://postgres@127.0.0.1:1/nothing"

    done = run_foundry("stats", env={"QUEUE_DRIVER": "postgres", "DATABASE_URL": url})

    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"error: PostgreSQL at {url} is unreachable"), done.stderr
    assert "error connecting in" not in done.stderr


def test_work_refuses_a_schema_that_is_not_migrated(env: dict[str, str]) -> None:
    result = foundry("work", "--app", DEMO_APP, "--burst", QUEUE_DRIVER="postgres", **env)

    assert result.exit_code == 2
    assert "run foundry migrate" in result.stderr
    assert env["DATABASE_SCHEMA"] in result.stderr


@pytest.fixture
def role(postgres_url: str) -> Iterator[ThrowawayRole]:
    made = ThrowawayRole(postgres_url).create()
    yield made
    made.drop()


def as_admin(postgres_url: str, statement: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(statement.encode())


def test_migrate_by_a_role_that_may_not_create_the_schema_exits_2_naming_the_grant(
    env: dict[str, str], role: ThrowawayRole
) -> None:
    result = foundry("migrate", **{**env, "DATABASE_URL": role.url()})

    assert result.exit_code == 2, result.output
    assert f"the role '{role.name}' may not create" in result.stderr
    assert f'GRANT CREATE ON DATABASE "{role.url().rpartition("/")[2]}"' in result.stderr
    assert "Traceback" not in result.output


def test_migrate_by_the_owner_of_the_schema_needs_no_create_on_the_database(
    env: dict[str, str], postgres_url: str, role: ThrowawayRole
) -> None:
    schema = env["DATABASE_SCHEMA"]
    as_admin(postgres_url, f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role.name}"')

    result = foundry("migrate", **{**env, "DATABASE_URL": role.url()})

    assert result.exit_code == 0, result.output
    assert "applied 0001_queue" in result.stdout


def test_migrate_with_nothing_pending_runs_as_a_role_granted_only_what_workers_need(
    env: dict[str, str], postgres_url: str, role: ThrowawayRole
) -> None:
    foundry("migrate", **env)
    schema, name = env["DATABASE_SCHEMA"], role.name
    as_admin(
        postgres_url,
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{name}";'
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{name}"',
    )

    result = foundry("migrate", **{**env, "DATABASE_URL": role.url()})

    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_migrate_check_by_a_role_without_usage_on_the_schema_exits_2_naming_the_grant(
    env: dict[str, str], role: ThrowawayRole
) -> None:
    foundry("migrate", **env)

    result = foundry("migrate", "--check", **{**env, "DATABASE_URL": role.url()})

    assert result.exit_code == 2, result.output
    assert f'GRANT USAGE ON SCHEMA "{env["DATABASE_SCHEMA"]}" TO "{role.name}"' in result.stderr


def test_migrate_into_a_schema_holding_a_table_of_that_name_says_so_and_changes_nothing(
    env: dict[str, str], postgres_url: str
) -> None:
    schema = env["DATABASE_SCHEMA"]
    as_admin(postgres_url, f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".jobs (id int)')

    result = foundry("migrate", **env)

    assert result.exit_code == 1, result.output
    assert 'migration 0001_queue failed (relation "jobs" already exists)' in result.stderr
    assert "a schema of its own" in result.stderr
    assert "Traceback" not in result.output
    assert "pending: 0001_queue" in foundry("migrate", "--check", **env).stderr


def test_migrate_by_a_role_in_a_schema_another_role_owns_exits_2_naming_the_owner_change(
    env: dict[str, str], postgres_url: str, role: ThrowawayRole
) -> None:
    schema = env["DATABASE_SCHEMA"]
    as_admin(
        postgres_url, f'CREATE SCHEMA "{schema}"; GRANT USAGE ON SCHEMA "{schema}" TO "{role.name}"'
    )

    result = foundry("migrate", **{**env, "DATABASE_URL": role.url()})

    assert result.exit_code == 2, result.output
    assert f'ALTER SCHEMA "{schema}" OWNER TO "{role.name}"' in result.stderr
    assert "GRANT CREATE ON DATABASE" not in result.stderr
