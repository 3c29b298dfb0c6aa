"""The connection pool: lazy, and a server that does not answer is ``QueueUnavailable``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool, pooled
from foundry.domain import CacheUnavailable, QueueUnavailable

pytestmark = pytest.mark.postgres


def test_the_pool_connects_on_first_use(postgres_url: str) -> None:
    settings = PostgresSettings(postgres_url, pool_size=2)
    pool = open_pool(settings, name="foundry-test")

    assert pool.closed
    with pooled(pool, settings) as conn:
        row = conn.execute("SELECT current_setting('application_name')").fetchone()
    pool.close()

    assert row == ("foundry-test",)


@pytest.mark.parametrize("kind", [QueueUnavailable, CacheUnavailable])
def test_an_unreachable_server_raises_the_ports_error_with_the_servers_reason(
    kind: type[QueueUnavailable | CacheUnavailable],
) -> None:
    settings = PostgresSettings(
        "postgresql://app:secret@127.0.0.1:1/app", connect_timeout=timedelta(seconds=1)
    )
    pool = open_pool(settings)

    with pytest.raises(kind) as raised, pooled(pool, settings, kind):
        pass
    pool.close()

    message = str(raised.value)
    assert "127.0.0.1:1/app is unreachable" in message
    assert "refused" in message
    assert "secret" not in message


def test_a_pool_whose_connections_all_stay_busy_says_so_naming_its_size(
    postgres_url: str,
) -> None:
    settings = PostgresSettings(
        postgres_url, pool_size=1, connect_timeout=timedelta(milliseconds=200)
    )
    pool = open_pool(settings)

    with (
        pooled(pool, settings),  # holds the one connection
        pytest.raises(QueueUnavailable) as raised,
        pooled(pool, settings),
    ):
        pass
    pool.close()

    message = str(raised.value)
    assert "DATABASE_POOL_SIZE" in message
    assert "all 1 pooled connections" in message
    assert "unreachable" not in message
