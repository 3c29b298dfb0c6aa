"""The peers bench's PostgreSQL: a throwaway cluster of its own (``initdb`` on a free port),
started when a system on PostgreSQL first runs, with one database the systems share, emptied
before each measurement, and the server's CPU and the tables' size read from outside."""

from __future__ import annotations

import psutil
import psycopg
from psycopg import sql

from tests.faults.postgres_cluster import PostgresCluster

DATABASE = "bench"


class BenchDatabase:
    """The cluster, started lazily; ``url`` is the systems' database."""

    def __init__(self) -> None:
        self._cluster: PostgresCluster | None = None

    @property
    def cluster(self) -> PostgresCluster:
        """The running cluster (``initdb`` and start on first use)."""
        if self._cluster is None:
            self._cluster = PostgresCluster(fsync=True).init()
        return self._cluster

    @property
    def url(self) -> str:
        """The systems' database."""
        return self.cluster.url.rsplit("/", 1)[0] + f"/{DATABASE}"

    def reset(self) -> None:
        """Drop and create the database: every system starts from empty tables."""
        name = sql.Identifier(DATABASE)
        with self.cluster.connect() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def cpu(self) -> float:
        """CPU seconds the server has used: the postmaster, its live processes and the ones
        it reaped (each connection's backend exits with its connection)."""
        pid = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        times = postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in postmaster.children():
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
        return total

    def table_bytes(self) -> int:
        """Heap, TOAST and indexes of every table outside the system schemas."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        return int(row[0]) if row else 0

    def version(self) -> str:
        """The server's version, or ``"not started"``."""
        if self._cluster is None:
            return "not started"
        with self.cluster.connect() as admin:
            row = admin.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def close(self) -> None:
        """Stop the cluster and remove its files."""
        if self._cluster is not None:
            self._cluster.close()
