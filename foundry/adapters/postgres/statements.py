"""The SQL the PostgreSQL queue sends, rendered once for its schema.

Statements name Foundry's schema explicitly (never the search path), so they run the same on
a pooled connection and on the caller's own connection of a transactional enqueue.
"""

from __future__ import annotations

from psycopg import sql

from foundry.adapters.postgres.names import check_schema

# Pending: ready, or delayed with a run time that has come (``%(now)s`` is the time).
_PENDING = "(state = 'ready' OR (state = 'delayed' AND run_at <= {now}))"
_KEPT = "(expires_at IS NULL OR expires_at > {now})"
_NOW = "coalesce(%(now)s::timestamptz, clock_timestamp())"

# The ready jobs a freed slot made ready (``parked`` still set: free_slot's mark), left
# unclaimed (cancelled, deleted; their queue, limit_key and limit_concurrency in the CTE
# ``left_ready``, a row each): while its key runs fewer jobs than its concurrency, each hands
# its slot to the key's next parked job, which is ready (and marked), so no slot is left
# unused with jobs parked for it (free_slot's rule). Any other ready job passes nothing: no
# slot was set aside for it. The queues made ready, in ``passed``.
PASS_SLOT_ON = """
    passed AS (
        UPDATE {s}.jobs j
           SET state = 'ready', run_at = j.parked_from, parked_from = NULL
          FROM (SELECT queue, limit_key, max(limit_concurrency) AS concurrency, count(*) AS n
                  FROM left_ready GROUP BY queue, limit_key) g
         WHERE j.queue = g.queue AND j.id IN (
               SELECT p.id FROM {s}.jobs p
                WHERE p.queue = g.queue AND p.limit_key = g.limit_key
                  AND p.parked IS NOT NULL AND NOT p.reserved AND p.state = 'delayed'
                ORDER BY p.parked
                LIMIT greatest(least(g.n, g.concurrency - (
                          SELECT coalesce(max(k.running), 0) FROM {s}.limit_keys k
                           WHERE k.queue = g.queue AND k.key = g.limit_key)), 0)
                FOR UPDATE SKIP LOCKED)
        RETURNING j.queue
    )"""


def _enqueue_through(function: str) -> str:
    """A call of ``function`` with the arrays of jobs ``enqueue`` takes (``enqueue_jobs``
    checks them against kept batches' ids first)."""
    return f"""
        SELECT i, existing FROM {{s}}.{function}(
            %(queues)s::text[], %(ids)s::text[], %(priorities)s::integer[],
            %(at)s::timestamptz[], %(delays)s::interval[], %(max_attempts)s::integer[],
            %(blobs)s::bytea[], %(unique_keys)s::text[], %(unique_ttls)s::interval[],
            %(unique_untils)s::text[], %(after_failures)s::text[], %(after_jobs)s::integer[],
            %(after_ids)s::text[], %(limit_keys)s::text[], %(limit_concurrency)s::integer[],
            %(limit_interval_ms)s::bigint[], %(keep)s::interval, %(max_dead)s::integer,
            %(dead_age)s::interval, %(now)s::timestamptz)
        """


_STATEMENTS: dict[str, str] = {
    "enqueue": _enqueue_through("enqueue_jobs"),
    # A schedule's ticks go through enqueue itself, not checked against batch ids (as the
    # other backends store them): a refusal inside a firing would stop the schedule, every
    # scheduler retrying it, until the batch was forgotten.
    "enqueue_ticks": _enqueue_through("enqueue"),
    "enqueue_one": """
        SELECT 1, {s}.enqueue_one(
            %(queue)s::text, %(id)s::text, %(priority)s::integer, %(at)s::timestamptz,
            %(delay)s::interval, %(max_attempts)s::integer, %(blob)s::bytea,
            %(after_failure)s::text, %(limit_key)s::text, %(limit_concurrency)s::integer,
            %(limit_interval_ms)s::bigint, %(now)s::timestamptz)
        """,
    "claim": """
        SELECT n, queue, id, blob, lease_token, attempts, deadline, fence, lapses
          FROM {s}.claim(
            %(queues)s::text[], %(limit)s::integer, %(lease)s::interval, %(token)s::text,
            %(worker)s::text, %(now)s::timestamptz, %(remember)s::boolean,
            %(ahead)s::integer, %(started_queues)s::text[], %(started_ids)s::text[],
            %(started_tokens)s::text[])
        """,
    "complete_and_claim": """
        SELECT n, queue, id, blob, lease_token, attempts, deadline, fence, lapses, applied
          FROM {s}.complete_and_claim(
            %(queues)s::text[], %(ids)s::text[], %(tokens)s::text[], %(results)s::bytea[],
            %(keep)s::interval, %(claim_queues)s::text[], %(limit)s::integer,
            %(lease)s::interval, %(token)s::text, %(worker)s::text, %(now)s::timestamptz,
            %(remember)s::boolean, %(ahead)s::integer, %(started_queues)s::text[],
            %(started_ids)s::text[], %(started_tokens)s::text[])
        """,
    "renew": """
        SELECT i, deadline, stop FROM {s}.renew(
            %(queues)s::text[], %(ids)s::text[], %(tokens)s::text[], %(progress)s::bytea[],
            %(duration)s::interval, %(now)s::timestamptz, %(started)s::boolean[])
        """,
    "complete": """
        SELECT i, applied FROM {s}.complete(
            %(queues)s::text[], %(ids)s::text[], %(tokens)s::text[], %(results)s::bytea[],
            %(keep)s::interval, %(now)s::timestamptz)
        """,
    "fail": """
        SELECT {s}.fail(
            %(queue)s::text, %(id)s::text, %(token)s::text, %(error)s::bytea, %(kind)s::text,
            %(delay)s::interval, %(reason)s::text, %(keep)s::interval, %(max_dead)s::integer,
            %(dead_age)s::interval, %(now)s::timestamptz)
        """,
    "release": """
        SELECT {s}.release(
            %(queue)s::text, %(id)s::text, %(token)s::text, %(delay)s::interval,
            %(keep)s::interval, %(now)s::timestamptz)
        """,
    "now": f"SELECT {_NOW}",
    "expired": """
        SELECT queue, id, lease_token, attempts, max_attempts, worker, stop, lease_deadline,
               run_at, ahead
          FROM {s}.jobs WHERE state = 'active' AND lease_deadline < %(now)s
         ORDER BY lease_deadline, id COLLATE "C" LIMIT 500 FOR UPDATE SKIP LOCKED
        """,
    "lose": """
        SELECT {s}.end_job(
            %(queue)s::text, %(id)s::text, %(kind)s::text, %(run_at)s::timestamptz, true,
            %(reason)s::text, 'lost', %(now)s::timestamptz, %(keep)s::interval,
            %(max_dead)s::integer, %(dead_age)s::interval)
        """,
    "give_back": "SELECT {s}.give_back(%(queue)s::text, %(id)s::text)",
    "append_error": """
        UPDATE {s}.jobs SET errors = errors || %(error)s::bytea
         WHERE queue = %(queue)s AND id = %(id)s
        """,
    # At most 1,000 a call, so one reap never holds a long transaction.
    "forget_expired": """
        DELETE FROM {s}.jobs
         WHERE (queue, id) IN (SELECT queue, id FROM {s}.jobs
                                WHERE expires_at <= %(now)s LIMIT 1000)
        """,
    "forget_tokens": "DELETE FROM {s}.claim_tokens WHERE expires_at <= %(now)s",
    "forget_waiters": "DELETE FROM {s}.waiters WHERE expires_at <= clock_timestamp()",
    # A key's row decides nothing once no job of it runs, none holds its rate turn and its
    # next start has come (a claim re-creates it as a row never used would be).
    "forget_limit_keys": """
        DELETE FROM {s}.limit_keys k
         USING (SELECT queue, key FROM {s}.limit_keys
                 WHERE running = 0 AND turn IS NULL
                   AND next_ms <= floor(extract(epoch FROM %(now)s::timestamptz) * 1000)
                 LIMIT 1000 FOR UPDATE SKIP LOCKED) idle
         WHERE k.queue = idle.queue AND k.key = idle.key
        """,
    "cancel": f"""
        WITH left_ready AS (
            SELECT queue, limit_key, limit_concurrency FROM {{s}}.jobs
             WHERE id = %(id)s AND (%(queue)s::text IS NULL OR queue = %(queue)s)
               AND state = 'ready' AND limit_concurrency IS NOT NULL AND parked IS NOT NULL
             ORDER BY queue LIMIT 1
        ), cancelled AS (
            SELECT {{s}}.cancel(
                %(queue)s::text, %(id)s::text, %(reason)s::text, %(keep)s::interval,
                %(max_dead)s::integer, %(dead_age)s::interval, %(now)s::timestamptz) AS state
        ), {PASS_SLOT_ON}
        SELECT c.state, {{s}}.wake(ARRAY(SELECT queue FROM passed)) FROM cancelled c
        """,
    "add_waiter": """
        INSERT INTO {s}.waiters (token, queue, job_id, expires_at)
        VALUES (%(token)s, %(queue)s, %(id)s, clock_timestamp() + %(for)s)
        """,
    "drop_waiter": "DELETE FROM {s}.waiters WHERE token = %(token)s",
    "wake": "SELECT {s}.wake(%(queues)s::text[])",
    "record": f"""
        SELECT queue, id, state, priority, attempts, enqueued_at, run_at, lease_deadline,
               blob, errors, result, reason, finished_at, worker, progress
          FROM {{s}}.jobs
         WHERE id = %(id)s AND (%(queue)s::text IS NULL OR queue = %(queue)s)
           AND {_KEPT.format(now="%(now)s")}
         ORDER BY queue LIMIT 1
        """,
    # Each count walks one partial index (ready, delayed, active, dead), never the
    # completed records a busy queue keeps for an hour.
    "stats": """
        SELECT q.name,
               (SELECT count(*) FROM {s}.jobs j WHERE j.queue = q.name AND j.state = 'ready')
               + (SELECT count(*) FROM {s}.jobs j
                   WHERE j.queue = q.name AND j.state = 'delayed' AND j.run_at <= %(now)s),
               (SELECT count(*) FROM {s}.jobs j
                 WHERE j.queue = q.name AND j.state = 'delayed' AND j.run_at > %(now)s),
               (SELECT count(*) FROM {s}.jobs j WHERE j.queue = q.name AND j.state = 'active'),
               (SELECT count(*) FROM {s}.jobs j WHERE j.queue = q.name AND j.state = 'dead'),
               coalesce(qs.paused, false),
               (SELECT coalesce(sum(t.completed), 0) FROM {s}.queue_totals t
                 WHERE t.queue = q.name),
               (SELECT coalesce(sum(t.failed), 0) FROM {s}.queue_totals t WHERE t.queue = q.name),
               coalesce(qs.dead_trimmed, 0), coalesce(qs.stale_rejected, 0),
               (SELECT count(*) FROM {s}.jobs j WHERE j.queue = q.name AND j.state = 'waiting')
          FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(name, n)
          LEFT JOIN {s}.queues qs ON qs.name = q.name
         ORDER BY q.n
        """,
    # `used`: the queue has held a job or been paused (a queue paused ahead is listed)
    "queues": "SELECT name FROM {s}.queues WHERE used ORDER BY name",
    "oldest_ready": f"""
        SELECT q.n, (SELECT min(h.run_at) FROM (
                   SELECT DISTINCT ON (priority) run_at FROM {{s}}.jobs
                    WHERE queue = q.name AND {_PENDING.format(now="%(now)s")}
                    ORDER BY priority, seq) h)
          FROM unnest(%(queues)s::text[]) WITH ORDINALITY AS q(name, n) ORDER BY q.n
        """,
    "pause": """
        INSERT INTO {s}.queues (name, paused, used) VALUES (%(queue)s, %(paused)s, %(paused)s)
        ON CONFLICT (name) DO UPDATE
        SET paused = excluded.paused, used = {s}.queues.used OR excluded.paused
        """,
}

_COLUMNS = """queue, id, state, priority, attempts, enqueued_at, run_at, lease_deadline,
               blob, errors, result, reason, finished_at, worker, progress"""

#: ``jobs(queue, state)``: which rows, in which order (the claim's order for READY).
LISTINGS: dict[str, str] = {
    "ready": f"""SELECT {_COLUMNS} FROM {{s}}.jobs
        WHERE queue = %(queue)s AND {_PENDING.format(now="%(now)s")}
        ORDER BY priority DESC, seq OFFSET %(offset)s LIMIT %(limit)s""",
    "delayed": f"""SELECT {_COLUMNS} FROM {{s}}.jobs
        WHERE queue = %(queue)s AND state = 'delayed' AND run_at > %(now)s
        ORDER BY run_at, seq OFFSET %(offset)s LIMIT %(limit)s""",
    "active": f"""SELECT {_COLUMNS} FROM {{s}}.jobs
        WHERE queue = %(queue)s AND state = 'active'
        ORDER BY lease_deadline, seq OFFSET %(offset)s LIMIT %(limit)s""",
    "ended": f"""SELECT {_COLUMNS} FROM {{s}}.jobs
        WHERE queue = %(queue)s AND state = %(state)s AND {_KEPT.format(now="%(now)s")}
        ORDER BY seq DESC OFFSET %(offset)s LIMIT %(limit)s""",
    "waiting": f"""SELECT {_COLUMNS} FROM {{s}}.jobs
        WHERE queue = %(queue)s AND state = 'waiting'
        ORDER BY seq OFFSET %(offset)s LIMIT %(limit)s""",
}


def _render(template: str, schema: str) -> bytes:
    return template.replace("{s}", sql.Identifier(schema).as_string()).encode()


class Statements:
    """Every statement of the queue, for one schema, as bytes psycopg sends as they are."""

    def __init__(self, schema: str) -> None:
        check_schema(schema)
        self.schema = schema
        self._rendered = {name: _render(text, schema) for name, text in _STATEMENTS.items()}
        self._listings = {name: _render(text, schema) for name, text in LISTINGS.items()}

    def __getitem__(self, name: str) -> bytes:
        return self._rendered[name]

    def listing(self, kind: str) -> bytes:
        """The ``jobs()`` query for ``kind`` (ready, delayed, active, ended, waiting)."""
        return self._listings[kind]

    def render(self, template: str) -> bytes:
        """Any other statement, with ``{s}`` standing for the schema."""
        return _render(template, self.schema)
