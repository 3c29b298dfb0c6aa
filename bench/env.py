"""What every workload runs against: scale, a private redis-server, a throwaway PostgreSQL
database (created on the machine's server on first use, dropped at the end), a scratch
directory."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import redis

from tests.postgres_server import ThrowawayDatabase
from tests.redis_server import RedisServer


class Env:
    """Shared state of one bench session.

    The redis-server is ours (started on a free port, never the machine's 6379), so workloads
    may flush it between runs to measure memory from a clean slate.
    """

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick
        self.scratch = Path(tempfile.mkdtemp(prefix="foundry-bench-"))
        self._server: RedisServer | None = None
        self._database: ThrowawayDatabase | None = None
        self._names = itertools.count(1)

    def scale(self, full: int, quick: int) -> int:
        """``full`` in a full run, ``quick`` with ``--quick``."""
        return quick if self.quick else full

    @property
    def server(self) -> RedisServer:
        """The session's redis-server, started on first use."""
        if self._server is None:
            self._server = RedisServer().start()
        return self._server

    @property
    def redis_url(self) -> str:
        """URL of the session's redis-server."""
        return self.server.url

    @property
    def postgres_url(self) -> str:
        """URL of the session's PostgreSQL database, created and migrated on first use."""
        if self._database is None:
            from foundry.adapters.postgres.config import PostgresSettings  # noqa: PLC0415
            from foundry.adapters.postgres.connection import connect  # noqa: PLC0415
            from foundry.adapters.postgres.migrator import Migrator  # noqa: PLC0415

            self._database = ThrowawayDatabase().create()
            settings = PostgresSettings(url=self._database.url())
            Migrator(lambda: connect(settings), settings.schema).migrate()
        return self._database.url()

    def client(self) -> redis.Redis:
        """A plain client for setup and inspection (never used inside a timed section)."""
        return self.server.client()

    def flush(self) -> None:
        """Empty our own server (we started it: nobody else's data is on it)."""
        with self.client() as admin:
            admin.flushall()

    def unique(self, stem: str) -> str:
        """A name no other run of this session uses (queue names, key prefixes)."""
        return f"{stem}-{os.getpid()}-{next(self._names)}"

    def redis_version(self) -> str:
        """The server's version, or ``"not started"``."""
        if self._server is None:
            return "not started"
        with self.client() as admin:
            return str(admin.info("server")["redis_version"])

    def close(self) -> None:
        """Stop the server and remove scratch files."""
        if self._server is not None:
            self._server.close()
        if self._database is not None:
            self._database.drop()
        shutil.rmtree(self.scratch, ignore_errors=True)
