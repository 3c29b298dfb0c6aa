"""The PostgreSQL queue's worker registry: each pool's heartbeat, until it expires."""

from __future__ import annotations

from datetime import timedelta

from foundry.adapters.postgres.database import Database
from foundry.ports import WorkerInfo

_HEARTBEAT = """
    INSERT INTO {s}.workers (id, info, expires_at)
    VALUES (%(id)s, %(info)s, coalesce(%(now)s::timestamptz, clock_timestamp()) + %(ttl)s)
    ON CONFLICT (id) DO UPDATE SET info = excluded.info, expires_at = excluded.expires_at
"""
_LIVE = """
    SELECT info FROM {s}.workers
     WHERE expires_at > coalesce(%(now)s::timestamptz, clock_timestamp()) ORDER BY id
"""
_FORGET = "DELETE FROM {s}.workers WHERE id = %(id)s OR expires_at <= %(before)s"


class PostgresWorkers:
    """``WorkerRegistry`` in the ``workers`` table; expiry on the queue's clock."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._heartbeat = db.sql.render(_HEARTBEAT)
        self._live = db.sql.render(_LIVE)
        self._forget = db.sql.render(_FORGET)

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish ``info`` until now + ``ttl``."""
        params = {
            "id": info.id,
            "info": self._db.rows.codec.encode_worker(info),
            "now": self._db.now(),
            "ttl": ttl,
        }
        with self._db.conn() as conn:
            conn.execute(self._heartbeat, params)

    def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat has not expired, by id."""
        with self._db.conn() as conn:
            rows = conn.execute(self._live, {"now": self._db.now()}).fetchall()
        return [self._db.rows.codec.decode(bytes(row[0]), WorkerInfo) for row in rows]

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker now (and any long expired)."""
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            conn.execute(self._forget, {"id": worker_id, "before": now})
