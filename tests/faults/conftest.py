"""Fixtures of the fault scenarios: a printed seed and a ``Rig`` per scenario."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest

from tests.faults.harness import Rig
from tests.faults.postgres_cluster import PostgresCluster
from tests.faults.postgres_rig import MakePgRig, PostgresRig
from tests.faults.proxy import FaultProxy
from tests.faults.redis_workers import MakeWorkers, Workers


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Remember each phase's report on the item, so ``make_rig`` knows if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def seed() -> int:
    """``FOUNDRY_FAULT_SEED`` to replay a run, else a fresh one (printed by the rig)."""
    given = os.environ.get("FOUNDRY_FAULT_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


@pytest.fixture
def make_rig(seed: int, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Rig]]:
    """Build the scenario's ``Rig`` for a Redis URL; stopped at teardown, files kept on failure."""
    rigs: list[Rig] = []

    def make(redis_url: str) -> Rig:
        rig = Rig(redis_url, seed=seed)
        rigs.append(rig)
        return rig

    yield make
    call = getattr(request.node, "report_call", None)
    failed = call is None or not call.passed
    for rig in rigs:
        rig.close(keep=failed)


@pytest.fixture
def make_pg_rig(seed: int, request: pytest.FixtureRequest) -> Iterator[MakePgRig]:
    """``make_rig`` on PostgreSQL: stopped at teardown, files kept on failure, the scenario's
    schema dropped."""
    rigs: list[PostgresRig] = []

    def make(database_url: str) -> PostgresRig:
        rig = PostgresRig(database_url, seed=seed)
        rigs.append(rig)
        return rig

    yield make
    call = getattr(request.node, "report_call", None)
    failed = call is None or not call.passed
    for rig in rigs:
        rig.close(keep=failed)
        with suppress(psycopg.Error):
            rig.drop_schema()


@pytest.fixture
def make_proxy() -> Iterator[Callable[[int], FaultProxy]]:
    """Start fault proxies in front of Redis ports; closed at teardown."""
    proxies: list[FaultProxy] = []

    def make(port: int) -> FaultProxy:
        proxy = FaultProxy(port).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def make_workers(tmp_path: Path) -> Iterator[MakeWorkers]:
    """``Workers`` on a Redis URL, prefix and lease (s); every process they started, and all it
    started, is killed at teardown, so a failing test leaves nothing running."""
    made: list[Workers] = []

    def make(redis_url: str, prefix: str, lease_s: int) -> Workers:
        workers = Workers(tmp_path, redis_url, prefix, lease_s)
        made.append(workers)
        return workers

    yield make
    for workers in made:
        workers.close()


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own, to restart at will."""
    server = PostgresCluster().init()
    try:
        yield server
    finally:
        server.close()
