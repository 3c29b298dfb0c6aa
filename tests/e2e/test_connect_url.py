"""``foundry.connect(url)``: the queue and the cache on the server the URL names, the other
settings from the environment."""

from __future__ import annotations

import uuid
from functools import partial

import pytest

import foundry
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect as pg_connect
from foundry.adapters.postgres.migrator import Migrator
from tests.e2e.apps import add, registry


def _round_trip(url: str, reader: foundry.Settings) -> None:
    """A job dispatched and a value cached through ``connect(url)`` are seen through
    ``reader``, settings naming the same server the long way."""
    with foundry.connect(url) as fx:
        job_id = fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2})
        fx.cache.set("connect-url", {"seen": True})
    with foundry.connect(reader) as other:
        record = other.queue.get(job_id)
        assert record is not None
        assert record.state is foundry.JobState.READY
        assert other.cache.get("connect-url") == {"seen": True}


@pytest.mark.redis
def test_a_redis_url_puts_the_queue_and_the_cache_on_that_server(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"url{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("QUEUE_PREFIX", prefix)
    monkeypatch.setenv("CACHE_PREFIX", prefix)
    monkeypatch.delenv("REDIS_URL", raising=False)

    _round_trip(
        redis_url, foundry.Settings(redis_url=redis_url, queue_prefix=prefix, cache_prefix=prefix)
    )


@pytest.mark.postgres
def test_a_postgresql_url_puts_the_queue_and_the_cache_in_that_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"url_{uuid.uuid4().hex[:8]}"
    settings = PostgresSettings(postgres_url, schema=schema)
    Migrator(partial(pg_connect, settings), schema).migrate()
    monkeypatch.setenv("DATABASE_SCHEMA", schema)

    _round_trip(
        postgres_url,
        foundry.Settings(
            queue_driver="postgres",
            cache_driver="postgres",
            database_url=postgres_url,
            database_schema=schema,
        ),
    )


def test_memory_url_keeps_the_queue_in_this_process_whatever_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there

    with foundry.connect("memory://") as fx:
        job_id = fx.dispatcher(registry).dispatch(add, {"a": 1, "b": 2})
        record = fx.queue.get(job_id)

    assert record is not None
    assert fx.settings.queue_driver is foundry.Driver.MEMORY


def test_anything_but_settings_or_a_url_is_refused_naming_both() -> None:
    with pytest.raises(foundry.ConfigurationError, match=r"foundry.Settings\(...\) or a URL"):
        foundry.connect({"redis_url": "redis://127.0.0.1:6379/0"})  # type: ignore[arg-type]


def test_a_url_of_no_known_kind_is_refused_naming_the_forms_it_may_take() -> None:
    with pytest.raises(
        foundry.ConfigurationError, match=r"takes a Redis URL \(redis://.*postgresql://"
    ) as raised:
        foundry.connect("mysql://app:hunter2@db/app")

    assert "hunter2" not in str(raised.value)
