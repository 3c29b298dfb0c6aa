"""The migration runner on a real PostgreSQL: applies in order, once, and refuses old schemas."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import psycopg
import pytest

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect
from foundry.adapters.postgres.migrator import (
    Migration,
    MigrationFailed,
    Migrator,
    SchemaOutdated,
    load_migrations,
)
from foundry.domain import QueueUnavailable
from tests.postgres_server import unique_name

pytestmark = pytest.mark.postgres

EXTRA = "CREATE TABLE extra (id integer PRIMARY KEY);\nINSERT INTO extra VALUES (1);\n"


@pytest.fixture
def schema() -> str:
    return unique_name("s_")


def migrator(url: str, schema: str, migrations: tuple[Migration, ...] | None = None) -> Migrator:
    return Migrator(partial(connect, PostgresSettings(url, schema=schema)), schema, migrations)


def with_extra(sql: str = EXTRA) -> tuple[Migration, ...]:
    return (*load_migrations(), Migration(len(load_migrations()) + 1, "extra", sql))


def tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        ).fetchall()
    return {row[0] for row in rows}


def test_migrate_creates_the_schema_and_records_each_file(postgres_url: str, schema: str) -> None:
    runner = migrator(postgres_url, schema)

    applied = runner.migrate()

    assert [m.label for m in applied] == [m.label for m in load_migrations()]
    assert applied[0].label == "0001_queue"
    assert runner.current() == runner.latest
    assert {"schema_version", "jobs", "queues", "unique_keys", "workers"} <= tables(
        postgres_url, schema
    )
    assert runner.require_current() == runner.latest


def test_migrate_again_applies_nothing(postgres_url: str, schema: str) -> None:
    runner = migrator(postgres_url, schema)
    runner.migrate()

    assert runner.migrate() == []
    assert runner.current() == runner.latest


def test_a_newer_file_upgrades_an_older_schema_and_only_it_runs(
    postgres_url: str, schema: str
) -> None:
    migrator(postgres_url, schema).migrate()
    newer = migrator(postgres_url, schema, with_extra())

    applied = newer.migrate()

    assert [m.name for m in applied] == ["extra"]
    assert newer.current() == newer.latest == len(load_migrations()) + 1
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f'SELECT count(*) FROM "{schema}".extra').fetchone() == (1,)


def test_an_older_schema_is_refused_with_run_foundry_migrate(
    postgres_url: str, schema: str
) -> None:
    migrator(postgres_url, schema).migrate()
    newer = migrator(postgres_url, schema, with_extra())

    with pytest.raises(SchemaOutdated, match="run foundry migrate") as refused:
        newer.require_current()

    assert f"is at version {len(load_migrations())}" in str(refused.value)
    assert f"needs version {newer.latest}" in str(refused.value)


def test_a_missing_schema_is_refused_and_a_newer_one_accepted(
    postgres_url: str, schema: str
) -> None:
    with pytest.raises(SchemaOutdated, match=r"is not there.*run foundry migrate"):
        migrator(postgres_url, schema).require_current()

    migrator(postgres_url, schema, with_extra()).migrate()

    assert migrator(postgres_url, schema).require_current() == len(load_migrations()) + 1


def test_a_failing_file_leaves_the_schema_as_it_was(postgres_url: str, schema: str) -> None:
    migrator(postgres_url, schema).migrate()
    broken = migrator(postgres_url, schema, with_extra(EXTRA + "SELECT no_such_function();\n"))

    with pytest.raises(MigrationFailed, match=r"migration \d{4}_extra failed.*as it was") as failed:
        broken.migrate()

    assert isinstance(failed.value.__cause__, psycopg.errors.UndefinedFunction)

    assert broken.current() == len(load_migrations())
    assert "extra" not in tables(postgres_url, schema)


def test_concurrent_runs_apply_each_file_once(postgres_url: str, schema: str) -> None:
    runners = [migrator(postgres_url, schema) for _ in range(4)]
    results: list[list[Migration]] = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.migrate())) for r in runners]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(load_migrations())]
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(f'SELECT version FROM "{schema}".schema_version').fetchall()
    assert sorted(row[0] for row in rows) == [m.version for m in load_migrations()]


def test_files_are_read_in_order_and_a_gap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "notes.txt").write_text("not a migration")

    assert [m.label for m in load_migrations(tmp_path)] == ["0001_first", "0002_second"]

    (tmp_path / "0004_fourth.sql").write_text("SELECT 4;")
    with pytest.raises(ValueError, match="migration 0003 is missing"):
        load_migrations(tmp_path)


def test_an_unreachable_server_names_the_url_and_the_reason(schema: str) -> None:
    settings = PostgresSettings("postgresql://nobody:secret@127.0.0.1:1/none", schema=schema)

    with pytest.raises(QueueUnavailable, match=r"127\.0\.0\.1:1/none is unreachable") as error:
        Migrator(partial(connect, settings), schema).migrate()

    assert "secret" not in str(error.value)
    assert "check DATABASE_URL" in str(error.value)
