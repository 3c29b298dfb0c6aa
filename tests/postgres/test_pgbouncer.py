"""Foundry behind pgbouncer in transaction mode (each transaction on any server session): a
producer with ``DATABASE_PREPARED_STATEMENTS=false`` dispatches, waits for results and uses
the cache; with prepared statements on, the refusal names the setting."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import foundry
from foundry.adapters.postgres.queue import PostgresQueue
from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.apps import add, registry
from tests.process_support import kill_tree, spawn

pytestmark = pytest.mark.postgres

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> PostgresQueue:
    fixture: FixtureLookup = request.getfixturevalue
    return postgres_queue(fixture, None)


@pytest.fixture
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """The test database through a pgbouncer of this test's own, in transaction mode."""
    server = urlsplit(postgres_url)
    database = server.path.lstrip("/")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="foundry-pgbouncer-"))
    folder.chmod(0o755)  # pgbouncer drops root for the postgres user, who reads it
    config = folder / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{database} = host={server.hostname} port={server.port or 5432} "
        f"dbname={database} user={server.username or 'postgres'}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = any\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nunix_socket_dir =\n"
        "ignore_startup_parameters = extra_float_digits\n" + _no_prepared_statements()
    )
    config.chmod(0o644)
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    process = spawn([PGBOUNCER, *user, str(config)], stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        yield f"postgresql://{server.username or 'postgres'}@127.0.0.1:{port}/{database}"
    finally:
        kill_tree(process)
        shutil.rmtree(folder, ignore_errors=True)


def _no_prepared_statements() -> str:
    """The line that keeps prepared statements off in a pgbouncer that can track them (1.21
    and newer; 1.18 refuses the unknown key), as every pgbouncer before 1.21 has them."""
    shown = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True, check=True)
    major, minor = (int(part) for part in shown.stdout.split()[1].split(".")[:2])
    return "max_prepared_statements = 0\n" if (major, minor) >= (1, 21) else ""


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as attempt:
            if attempt.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within 10 s")


def _settings(url: str, schema: str, *, prepared: bool) -> foundry.Settings:
    return foundry.Settings(database_schema=schema, database_prepared_statements=prepared).on(url)


def test_a_producer_without_prepared_statements_works_through_transaction_pooling(
    queue: PostgresQueue, pgbouncer_url: str
) -> None:
    with foundry.connect(_settings(pgbouncer_url, queue.schema, prepared=False)) as fx:
        dispatcher = fx.dispatcher(registry)
        ids = [dispatcher.dispatch(add, {"a": n, "b": 1}) for n in range(20)]
        for n in range(10):
            fx.cache.set(f"k{n}", n)
        cached = [fx.cache.get(f"k{n}") for n in range(10)]

    assert all(queue.get(job_id) is not None for job_id in ids)
    assert cached == list(range(10))


def test_prepared_statements_through_transaction_pooling_are_refused_naming_the_setting(
    queue: PostgresQueue, pgbouncer_url: str
) -> None:
    def dispatch_twenty() -> None:
        for n in range(20):
            dispatcher.dispatch(add, {"a": n, "b": 1})

    with foundry.connect(_settings(pgbouncer_url, queue.schema, prepared=True)) as fx:
        dispatcher = fx.dispatcher(registry)
        with pytest.raises(foundry.ConfigurationError, match="DATABASE_PREPARED_STATEMENTS=false"):
            dispatch_twenty()
