"""``foundry migrate`` and the schema check ``foundry work`` runs, through the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from foundry.entrypoints.cli import cli
from tests.postgres_server import unique_name

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


def test_work_refuses_a_schema_that_is_not_migrated(env: dict[str, str]) -> None:
    result = foundry("work", "--app", DEMO_APP, "--burst", QUEUE_DRIVER="postgres", **env)

    assert result.exit_code == 2
    assert "run foundry migrate" in result.stderr
    assert env["DATABASE_SCHEMA"] in result.stderr
