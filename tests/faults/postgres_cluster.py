"""A throwaway PostgreSQL cluster for the fault tests: ``initdb`` in a temporary directory, a
free port, started and stopped (fast or immediate) at will. Never the machine's server.

PostgreSQL refuses to run as root; when the tests run as root (CI), the cluster's files belong
to the ``postgres`` user and its commands run as that user (``runuser``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import psycopg

from tests.redis_server import free_port


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed: run ./dev test (it installs postgresql)")
    return found


class PostgresCluster:
    """One cluster this test owns: its data directory, port and server process."""

    def __init__(self, *, fsync: bool = False) -> None:
        #: Off for the fault tests (their crashes stop the server, not the machine: the OS
        #: keeps what was written); on for the bench, which measures commits as they are.
        self.fsync = fsync
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="foundry-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """The cluster's ``postgres`` database as the ``postgres`` user (trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stdout}{result.stderr}")

    def init(self) -> PostgresCluster:
        """``initdb`` (trust auth on loopback) and start."""
        self._run(
            _binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        return self.start()

    def start(self) -> PostgresCluster:
        """Start the server and wait until it accepts connections (after crash recovery)."""
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=60"
        )
        self._run(
            _binary("pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clients cut off, a clean shutdown) or ``-m immediate`` (no
        shutdown checkpoint: the next start replays the WAL, as after a crash)."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self) -> psycopg.Connection:
        """An autocommit admin connection."""
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def close(self) -> None:
        """Stop the server if it runs and remove its files."""
        if (self.data / "postmaster.pid").exists():
            with suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
