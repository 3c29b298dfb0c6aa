"""PostgresCache beyond the shared contract: namespaces, fleet-wide state, the server's clock,
the sweep, and what an unmigrated or unreachable database says."""

from __future__ import annotations

import gc
import multiprocessing
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from psycopg_pool import ConnectionPool

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool, pooled
from foundry.adapters.postgres.migrator import Migrator
from foundry.domain import CacheUnavailable, ConfigurationError, UndecodableValue
from tests.backends import unique_prefix
from tests.postgres_server import ThrowawayDatabase

pytestmark = pytest.mark.postgres

Database = tuple[ConnectionPool, PostgresSettings]


def _cache(
    database: Database, clock: ManualClock | None, prefix: str | None = None
) -> PostgresCache:
    pool, settings = database
    return PostgresCache(pool, settings, prefix or unique_prefix("c"), clock=clock)


def _rows(cache: PostgresCache, table: str) -> int:
    core = cache._c
    with core.pool.connection() as conn:
        row = conn.execute(
            f'SELECT count(*) FROM "{core.settings.schema}".cache_{table} WHERE prefix = %s',
            [core.prefix],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_clear_removes_only_this_namespace(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    prefix = unique_prefix("c")
    cache, neighbour = (
        _cache(postgres_cache_pool, clock, prefix),
        _cache(postgres_cache_pool, clock),
    )
    lookalike = _cache(postgres_cache_pool, clock, prefix + "-x")
    cache.set_many({f"k{i}": i for i in range(2500)})
    cache.tags("t").set("tagged", 1)
    lock = cache.lock("l", 10)
    lock.acquire(blocking=False)
    neighbour.set("k1", "kept")
    lookalike.set("k1", "kept too")

    cache.clear()

    assert cache.get_many([f"k{i}" for i in range(2500)]) == {}
    assert _rows(cache, "values") == 0
    assert neighbour.get("k1") == "kept"
    assert lookalike.get("k1") == "kept too"
    assert lock.owned()


def test_two_caches_on_one_prefix_share_values_tags_and_stats(
    postgres_cache_pool: Database, postgres_url: str, clock: ManualClock
) -> None:
    prefix = unique_prefix("c")
    one = _cache(postgres_cache_pool, clock, prefix)
    settings = PostgresSettings(url=postgres_url)
    with open_pool(settings, "other-process") as pool:
        two = PostgresCache(pool, settings, prefix, clock=clock)
        one.set("k", "v")
        one.tags("t").set("tagged", 1)

        seen = two.get("k")
        two.get("missing")
        two.tags("t").flush()
        clock.advance(timedelta(seconds=1))  # another process' reads are in a second later
        two.get("k")

        assert seen == "v"
        assert one.tags("t").get("tagged") is None
        assert one.stats() == two.stats()
        assert (one.stats().hits, one.stats().misses) == (2, 2)


_CHILD = """
import sys
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool

settings = PostgresSettings(url=sys.argv[1])
with open_pool(settings, "child") as pool:
    cache = PostgresCache(pool, settings, sys.argv[2])
    cache.get("k")
    cache.get("absent")
"""


def test_stats_add_up_the_counts_of_every_process(
    postgres_cache_pool: Database, postgres_url: str
) -> None:
    cache = _cache(postgres_cache_pool, None)
    cache.set("k", 1)
    cache.get("k")

    child = subprocess.run(  # its reads are written as it exits, its pool closed already
        [sys.executable, "-c", _CHILD, postgres_url, cache._c.prefix],
        check=False,
        capture_output=True,
        timeout=60,
    )

    assert child.returncode == 0, child.stderr
    assert (cache.stats().hits, cache.stats().misses) == (2, 1)


#: A process whose logging sink (written by loguru or not) is closed before it exits (as a
#: test's stream is), whose cache's database is then dropped (``drop``) or its server
#: unreachable (``unreachable``).
_EXITING_CHILD = """
import io, sys
from urllib.parse import urlsplit
from foundry.adapters.postgres.cache import PostgresCache
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import open_pool
from foundry.entrypoints.logging import configure_logging
from tests.faults.proxy import FaultProxy

url, mode, writer = sys.argv[1:]
if writer == "loguru":
    import loguru  # noqa: F401 - records then go through loguru's sink
proxy = FaultProxy(urlsplit(url).port).start()
through = urlsplit(url)._replace(netloc=f"postgres@127.0.0.1:{proxy.port}").geturl()
sink = io.StringIO()
configure_logging("INFO", sink)
settings = PostgresSettings(url=through)
with open_pool(settings, "child") as pool:
    PostgresCache(pool, settings, "exiting").get("absent")
sink.close()
if mode == "unreachable":
    proxy.close()
print("counted", flush=True)
sys.stdin.readline()  # the test drops the database meanwhile
"""


def _exit_child(url: str, mode: str, writer: str, meanwhile: Callable[[], None]) -> tuple[int, str]:
    """Run ``_EXITING_CHILD``, calling ``meanwhile`` once it counted; its exit code and
    stderr."""
    child = subprocess.Popen(
        [sys.executable, "-c", _EXITING_CHILD, url, mode, writer],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "counted\n"
    meanwhile()
    _, stderr = child.communicate("\n", timeout=60)
    return child.returncode, stderr


@pytest.mark.parametrize("writer", ["loguru", "plain"])
def test_a_process_exiting_after_its_cache_database_was_dropped_says_nothing(
    postgres_database: ThrowawayDatabase, writer: str
) -> None:
    settings = PostgresSettings(url=postgres_database.url())
    Migrator(lambda: connect(settings), settings.schema).migrate()

    code, stderr = _exit_child(postgres_database.url(), "drop", writer, postgres_database.drop)

    assert (code, stderr) == (0, "")


@pytest.mark.parametrize("writer", ["loguru", "plain"])
def test_a_process_exiting_with_its_server_unreachable_says_its_counts_are_lost_once(
    postgres_database: ThrowawayDatabase, writer: str
) -> None:
    settings = PostgresSettings(url=postgres_database.url())
    Migrator(lambda: connect(settings), settings.schema).migrate()

    code, stderr = _exit_child(postgres_database.url(), "unreachable", writer, lambda: None)

    assert code == 0, stderr
    [line] = stderr.splitlines()
    assert "cache exiting's last 1 read counts are lost: PostgreSQL at" in line
    assert "is unreachable" in line


def _stored_reads(cache: PostgresCache) -> tuple[int, int]:
    """The hits and misses in the namespace's stats rows (what other processes see)."""
    core = cache._c
    with core.pool.connection() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(hits), 0), coalesce(sum(misses), 0) "
            f'FROM "{core.settings.schema}".cache_stats WHERE prefix = %s',
            [core.prefix],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_reads_write_their_counts_at_most_once_per_interval(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    pool, settings = postgres_cache_pool
    cache = PostgresCache(
        pool, settings, unique_prefix("c"), clock=clock, stats_every=timedelta(seconds=1)
    )
    cache.set("k", 1)
    for _ in range(50):
        cache.get("k")
    cache.get_many(["k", "absent"])
    cache.remember("k", 60, lambda: 2)
    before = _stored_reads(cache)

    clock.advance(timedelta(seconds=1))
    cache.get("absent")

    assert before == (0, 0)
    assert _stored_reads(cache) == (52, 2)
    assert (cache.stats().hits, cache.stats().misses) == (52, 2)


def test_stats_include_this_process_reads_not_yet_written(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    cache = _cache(postgres_cache_pool, clock)
    cache.get("absent")
    cache.set("k", 1)
    cache.get("k")

    stats = cache.stats()

    assert (stats.hits, stats.misses, stats.writes) == (1, 1, 1)
    assert _stored_reads(cache) == (1, 1)


def test_reads_of_cache_objects_built_per_request_all_count(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    prefix = unique_prefix("c")

    for _ in range(3):
        _cache(postgres_cache_pool, clock, prefix).get("absent")  # then dropped
    gc.collect()

    assert _cache(postgres_cache_pool, clock, prefix).stats().misses == 3


def _stats_in_child(settings: PostgresSettings, prefix: str) -> None:
    with open_pool(settings, "child") as pool:
        PostgresCache(pool, settings, prefix).stats()  # writes what this process counted


def test_a_forked_child_does_not_write_its_parent_s_counts_again(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    cache = _cache(postgres_cache_pool, clock)
    cache.get("absent")
    cache.get("absent")
    child = multiprocessing.get_context("fork").Process(
        target=_stats_in_child, args=(cache._c.settings, cache._c.prefix)
    )

    child.start()
    child.join(30)

    assert child.exitcode == 0
    assert cache.stats().misses == 2


def test_concurrent_increments_from_many_connections_all_count(
    postgres_cache_pool: Database,
) -> None:
    cache = _cache(postgres_cache_pool, None)

    def bump() -> None:
        for _ in range(50):
            cache.increment("n")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert cache.get("n") == 400


def test_the_cache_tables_are_unlogged(postgres_cache_pool: Database) -> None:
    pool, settings = postgres_cache_pool

    with pooled(pool, settings) as conn:  # opens the session's pool if no test did yet
        rows = conn.execute(
            "SELECT relname, relpersistence FROM pg_class JOIN pg_namespace n "
            "ON n.oid = relnamespace WHERE nspname = %s AND relname LIKE 'cache\\_%%' "
            "AND relkind = 'r'",
            [settings.schema],
        ).fetchall()

    assert dict(rows) == {f"cache_{t}": "u" for t in ("values", "locks", "tags", "stats")}


def test_without_a_clock_expiry_follows_the_server_s_clock(postgres_cache_pool: Database) -> None:
    cache = _cache(postgres_cache_pool, None)
    cache.set("long", "v", timedelta(hours=1))
    cache.set("short", "v", 0.001)

    deadline = time.monotonic() + 10  # a failure bound, not a measurement
    while cache.has("short") and time.monotonic() < deadline:
        time.sleep(0.01)

    assert not cache.has("short")
    assert cache.get("long") == "v"


def test_a_write_sweeps_expired_rows_at_most_once_per_interval(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    pool, settings = postgres_cache_pool
    cache = PostgresCache(
        pool, settings, unique_prefix("c"), clock=clock, sweep_every=timedelta(seconds=10)
    )
    cache.set_many({"a": 1, "b": 2}, 1)
    cache.lock("l", 1).acquire(blocking=False)
    clock.advance(timedelta(seconds=5))
    cache.set("c", 3)
    before = (_rows(cache, "values"), _rows(cache, "locks"))

    clock.advance(timedelta(seconds=5))
    cache.set("d", 4)

    assert before == (3, 1)  # expired, invisible, not yet swept
    assert (_rows(cache, "values"), _rows(cache, "locks")) == (2, 0)


def test_a_value_written_by_someone_else_is_undecodable_naming_it(
    postgres_cache_pool: Database, clock: ManualClock
) -> None:
    pool, settings = postgres_cache_pool
    cache = _cache(postgres_cache_pool, clock)
    with pool.connection() as conn:
        conn.execute(
            f'INSERT INTO "{settings.schema}".cache_values (prefix, key, value) '
            "VALUES (%s, %s, %s)",
            [cache._c.prefix, ":foreign", b"\xff\xfe not text"],
        )

    with pytest.raises(UndecodableValue, match="foreign"):
        cache.get("foreign")
    with pytest.raises(UndecodableValue, match="foreign"):
        cache.increment("foreign")


def test_an_unmigrated_schema_says_run_foundry_migrate(postgres_url: str) -> None:
    settings = PostgresSettings(
        url=postgres_url, schema=unique_prefix("nothing_here").replace("-", "_")
    )
    with open_pool(settings) as pool:
        cache = PostgresCache(pool, settings, unique_prefix("c"))

        with pytest.raises(ConfigurationError, match="run foundry migrate"):
            cache.get("k")


def test_an_unreachable_server_is_cache_unavailable_naming_the_setting() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = PostgresSettings(
        url=f"postgresql://postgres@127.0.0.1:{port}/nowhere", connect_timeout=timedelta(seconds=1)
    )
    with open_pool(settings) as pool:
        cache = PostgresCache(pool, settings, unique_prefix("c"))

        with pytest.raises(CacheUnavailable, match="DATABASE_URL"):
            cache.get("k")
