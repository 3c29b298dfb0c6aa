"""Fixtures every suite shares. Helpers themselves live in tests/backends.py and friends."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from hypothesis import HealthCheck, settings
from loguru import logger
from psycopg_pool import ConnectionPool

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migrator
from foundry.ports.cache import CachePort
from tests.backends import (
    CACHE_BACKENDS,
    QUEUE_BACKENDS,
    BatchQueue,
    CacheBackend,
    Queue,
    QueueBackend,
    QueueOptions,
)
from tests.dispatch_support import KINDS, Dispatchers
from tests.postgres_server import ThrowawayDatabase
from tests.redis_server import RedisServer
from tests.redis_topologies import RedisClusterGroup, SentinelGroup

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def library_logging() -> Iterator[None]:
    """Each test starts with logging as a host that configured nothing has it: ``foundry``
    records propagate to the root logger (and so to ``caplog``); a CLI run in-process that
    configured sinks is undone afterwards."""
    yield
    foundry = logging.getLogger("foundry")
    foundry.handlers = [logging.NullHandler()]
    foundry.setLevel(logging.NOTSET)
    foundry.propagate = True
    logger.remove()
    logger.configure(patcher=None)
    logger.add(sys.stderr)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis the tests may write to: ``FOUNDRY_TEST_REDIS_URL``, or a throwaway server.

    There is no skip: without Redis the Redis tests fail, so CI cannot pass without them.
    """
    given = os.environ.get("FOUNDRY_TEST_REDIS_URL")
    if given:
        redis.Redis.from_url(given).ping()
        yield given
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


#: The password the least-privilege user of docs/redis-acl.md gets in the tests.
ACL_PASSWORD = "acl-test-password"


@pytest.fixture(scope="session")
def redis_acl_url() -> Iterator[str]:
    """A throwaway Redis with the least-privilege user of docs/redis-acl.md; its URL as that
    user. The ACL line is read from the document, so the documented line is the tested one."""
    line = next(
        text.strip()
        for text in (ROOT / "docs" / "redis-acl.md").read_text().splitlines()
        if text.startswith("ACL SETUSER foundry ")
    )
    server = RedisServer().start()
    try:
        server.client().execute_command(*line.replace("CHANGE-ME", ACL_PASSWORD).split())
        yield f"redis://foundry:{ACL_PASSWORD}@127.0.0.1:{server.port}/0"
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelGroup]:
    """A master, its replica and three sentinels, started once per session; tests share it
    under unique prefixes and must leave its processes running."""
    group = SentinelGroup()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def redis_sentinel_url(redis_sentinel: SentinelGroup) -> str:
    """``redis+sentinel://`` naming the session's sentinels and their master."""
    return redis_sentinel.url()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterGroup]:
    """A Redis Cluster of three masters (no replicas), started once per session; tests share it
    under unique prefixes and must leave its nodes running and its slots where they are."""
    group = RedisClusterGroup()
    try:
        yield group
    finally:
        group.close()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterGroup) -> str:
    """``redis+cluster://`` naming the session's cluster nodes."""
    return redis_cluster.url()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start private redis-servers that a test may stop, kill, pause or restart."""
    servers: list[RedisServer] = []

    def start(**options: object) -> RedisServer:
        server = RedisServer(**options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway database on the machine's PostgreSQL, shared by this session's tests (each
    works in a schema of its own) and dropped at the end. No skip: without the server the
    PostgreSQL tests fail."""
    database = ThrowawayDatabase().create()
    try:
        yield database.url()
    finally:
        database.drop()


@pytest.fixture
def postgres_closing() -> Iterator[list[Callable[[], None]]]:
    """Closers of the PostgreSQL adapters a test built (their pools), run after it."""
    closers: list[Callable[[], None]] = []
    yield closers
    for close in reversed(closers):
        close()


@pytest.fixture
def postgres_database() -> Iterator[ThrowawayDatabase]:
    """A throwaway database of this test's own (to create roles against, to break)."""
    database = ThrowawayDatabase().create()
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(scope="session")
def postgres_cache_pool(postgres_url: str) -> Iterator[tuple[ConnectionPool, PostgresSettings]]:
    """A pool on the session's database, whose schema is migrated: the cache suites' (each
    cache a prefix of its own, as on a shared Redis)."""
    database = PostgresSettings(url=postgres_url, pool_size=4)  # the server is shared
    Migrator(lambda: connect(database), database.schema).migrate()
    pool = open_pool(database, "foundry-tests")
    try:
        yield pool, database
    finally:
        pool.close()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says (2030-01-01T00:00Z at the start)."""
    return ManualClock()


@pytest.fixture(
    params=[pytest.param(name, marks=backend.marks) for name, backend in QUEUE_BACKENDS.items()]
)
def queue_backend(request: pytest.FixtureRequest) -> QueueBackend:
    """Each registered queue backend in turn (tests/backends.py)."""
    return QUEUE_BACKENDS[request.param]


@pytest.fixture
def make_queue(
    queue_backend: QueueBackend, request: pytest.FixtureRequest, clock: ManualClock
) -> Callable[..., Queue]:
    """Build a fresh queue of the current backend on ``clock``, with ``QueueOptions`` fields."""

    def make(**options: object) -> Queue:
        return queue_backend.build(request.getfixturevalue, clock, QueueOptions(**options))  # type: ignore[arg-type]

    return make


@pytest.fixture
def queue(make_queue: Callable[..., Queue]) -> Queue:
    """A fresh, empty queue of the current backend, on the ``clock`` fixture."""
    return make_queue()


@pytest.fixture(
    params=[
        pytest.param(name, marks=backend.marks)
        for name, backend in QUEUE_BACKENDS.items()
        if backend.batches
    ]
)
def batch_backend(request: pytest.FixtureRequest) -> QueueBackend:
    """Each registered queue backend that keeps batches, in turn."""
    return QUEUE_BACKENDS[request.param]


@pytest.fixture
def batch_queue(
    batch_backend: QueueBackend, request: pytest.FixtureRequest, clock: ManualClock
) -> BatchQueue:
    """A fresh, empty queue of each backend that keeps batches, on the ``clock`` fixture."""
    built = batch_backend.build(request.getfixturevalue, clock, QueueOptions())
    return cast(BatchQueue, built)


@pytest.fixture(params=KINDS)
def dispatchers(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Dispatchers]:
    """Each dispatcher in turn, the sync one and the async one, built over a backend's queue
    (``Dispatchers.over``) on the ``clock`` fixture."""
    made = Dispatchers(request.param, request.getfixturevalue, clock)
    yield made
    made.close()


@pytest.fixture(
    params=[pytest.param(name, marks=backend.marks) for name, backend in CACHE_BACKENDS.items()]
)
def cache_backend(request: pytest.FixtureRequest) -> CacheBackend:
    """Each registered cache backend in turn (tests/backends.py)."""
    return CACHE_BACKENDS[request.param]


@pytest.fixture
def cache(
    cache_backend: CacheBackend, request: pytest.FixtureRequest, clock: ManualClock
) -> CachePort:
    """A fresh, empty cache of the current backend, on the ``clock`` fixture."""
    return cache_backend.build(request.getfixturevalue, clock)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect, for a backend, exactly the tests its entry says it lacks the capability for
    (``QueueBackend.lacks``): never skipped, so CI's no-skip rule holds, and named, so the
    list is the one place that says what a backend cannot do yet."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        name = params.get("queue_backend") or params.get("batch_backend")
        backend = QUEUE_BACKENDS.get(name) if isinstance(name, str) else None
        test = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
        if backend is not None and backend.lacked_by(test) is not None:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a skipped test is a failure: every test must run, Redis ones included."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) were skipped; every test must run in CI.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
