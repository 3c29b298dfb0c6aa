"""The PostgreSQL cache's statements: one statement per operation, so one round trip each.

Tables: ``migrations/0002_cache.sql``. Every statement takes ``prefix`` and ``now`` (ms on the
cache's clock, or NULL for the server's ``statement_timestamp()``, the same instant throughout
one statement); the counted ones also ``shard`` (the stats row they add to). A statement that
changes a value and counts it does both in one data-modifying ``WITH``, so a count never runs
ahead of, or behind, the write it counts; reads write nothing, their counts are added in
batches ("reads").
"""

from __future__ import annotations

from foundry.adapters.postgres.names import check_schema

_NOW = "coalesce(%(now)s::bigint, floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint)"

#: The exact integer range of a counter (as in every cache adapter).
_LIMIT = "9007199254740991"


def _live(alias: str) -> str:
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > {_NOW})"


def _count(hits: str = "0", misses: str = "0", writes: str = "0", deletes: str = "0") -> str:
    """An upsert adding to this process' stats row (a sub-statement of a ``WITH``)."""
    return (
        "INSERT INTO {stats} AS s (prefix, shard, hits, misses, writes, deletes) "
        f"SELECT %(prefix)s, %(shard)s, {hits}, {misses}, {writes}, {deletes} "
        "ON CONFLICT (prefix, shard) DO UPDATE SET hits = s.hits + excluded.hits, "
        "misses = s.misses + excluded.misses, writes = s.writes + excluded.writes, "
        "deletes = s.deletes + excluded.deletes"
    )


_FOUND = "(SELECT count(*) FROM v)"

_TEMPLATES = {
    # -- values: params key (or keys), and for writes payload(s) and ttl (ms, NULL forever) ---
    # Reads count their hits and misses in memory (``cache_reads.py``), written by "reads".
    "get": "SELECT value FROM {values} AS c "
    f"WHERE c.prefix = %(prefix)s AND c.key = %(key)s AND {_live('c')}",
    "set": "WITH w AS (INSERT INTO {values} AS c (prefix, key, value, expires_at) "
    f"VALUES (%(prefix)s, %(key)s, %(payload)s, {_NOW} + %(ttl)s::bigint) "
    "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at RETURNING 1), "
    f"s AS ({_count(writes='(SELECT count(*) FROM w)')}) SELECT count(*) FROM w",
    "add": "WITH w AS (INSERT INTO {values} AS c (prefix, key, value, expires_at) "
    f"VALUES (%(prefix)s, %(key)s, %(payload)s, {_NOW} + %(ttl)s::bigint) "
    "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
    f"expires_at = excluded.expires_at WHERE NOT {_live('c')} RETURNING 1), "
    f"s AS ({_count(writes='(SELECT count(*) FROM w)')}) SELECT count(*) FROM w",
    "pull": "WITH d AS (DELETE FROM {values} AS c WHERE c.prefix = %(prefix)s "
    f"AND c.key = %(key)s RETURNING value, {_live('c')} AS live), "
    "v AS (SELECT value FROM d WHERE live), "
    f"s AS ({_count(hits=_FOUND, misses=f'1 - {_FOUND}', deletes=_FOUND)}) SELECT value FROM v",
    "touch": f"UPDATE {{values}} AS c SET expires_at = {_NOW} + %(ttl)s::bigint "
    f"WHERE c.prefix = %(prefix)s AND c.key = %(key)s AND {_live('c')} RETURNING 1",
    "mget": "SELECT c.key, c.value FROM unnest(%(keys)s::text[]) AS u (k) "
    "JOIN {values} AS c ON c.prefix = %(prefix)s AND c.key = u.k "
    f"WHERE {_live('c')}",
    "reads": _count(hits="%(hits)s::bigint", misses="%(misses)s::bigint"),
    "mset": "WITH w AS (INSERT INTO {values} AS c (prefix, key, value, expires_at) "
    f"SELECT %(prefix)s, k, p, {_NOW} + %(ttl)s::bigint "
    "FROM unnest(%(keys)s::text[], %(payloads)s::bytea[]) AS u (k, p) "
    "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at RETURNING 1), "
    f"s AS ({_count(writes='(SELECT count(*) FROM w)')}) SELECT count(*) FROM w",
    "mdel": "WITH d AS (DELETE FROM {values} AS c WHERE c.prefix = %(prefix)s "
    f"AND c.key = ANY(%(keys)s::text[]) RETURNING {_live('c')} AS live), "
    "v AS (SELECT 1 FROM d WHERE live), "
    f"s AS ({_count(deletes=_FOUND)}) SELECT count(*) FROM v",
    # An integer counter moves by ``step`` keeping its expiry; a missing or expired one starts
    # at 0, forever. No row comes back when the stored value is not an integer in the exact
    # range or the result would leave it: the caller reads the value to say which.
    "incr": "WITH w AS (INSERT INTO {values} AS c (prefix, key, value, expires_at) "
    "VALUES (%(prefix)s, %(key)s, convert_to(%(step)s::bigint::text, 'UTF8'), NULL) "
    "ON CONFLICT (prefix, key) DO UPDATE SET "
    f"value = CASE WHEN {_live('c')} THEN convert_to("
    "(convert_from(c.value, 'UTF8')::bigint + %(step)s::bigint)::text, 'UTF8') "
    "ELSE excluded.value END, "
    f"expires_at = CASE WHEN {_live('c')} THEN c.expires_at END "
    f"WHERE NOT {_live('c')} OR CASE WHEN encode(c.value, 'escape') ~ '^-?[0-9]{{{{1,16}}}}$' "
    f"THEN abs(convert_from(c.value, 'UTF8')::bigint) <= {_LIMIT} "
    f"AND abs(convert_from(c.value, 'UTF8')::bigint + %(step)s::bigint) <= {_LIMIT} "
    "ELSE false END "
    "RETURNING convert_from(value, 'UTF8')::bigint AS n), "
    f"s AS ({_count(writes='(SELECT count(*) FROM w)')}) SELECT n FROM w",
    "clear": "DELETE FROM {values} WHERE prefix = %(prefix)s",
    "sweep": "WITH v AS (DELETE FROM {values} WHERE prefix = %(prefix)s "
    f"AND expires_at <= {_NOW} RETURNING 1), "
    f"l AS (DELETE FROM {{locks}} WHERE prefix = %(prefix)s AND expires_at <= {_NOW} "
    "RETURNING 1) SELECT (SELECT count(*) FROM v) + (SELECT count(*) FROM l)",
    "stats": "SELECT coalesce(sum(hits), 0), coalesce(sum(misses), 0), "
    "coalesce(sum(writes), 0), coalesce(sum(deletes), 0) FROM {stats} WHERE prefix = %(prefix)s",
    # -- tags: params names -------------------------------------------------------------------
    "versions": "SELECT name, version FROM {tags} "
    "WHERE prefix = %(prefix)s AND name = ANY(%(names)s::text[])",
    "flush": "INSERT INTO {tags} AS t (prefix, name, version) "
    "SELECT %(prefix)s, unnest(%(names)s::text[]), 1 "
    "ON CONFLICT (prefix, name) DO UPDATE SET version = t.version + 1",
    # -- locks and effect records: params name, holder, ttl -----------------------------------
    "acquire": "INSERT INTO {locks} AS l (prefix, name, holder, expires_at) "
    f"VALUES (%(prefix)s, %(name)s, %(holder)s, {_NOW} + %(ttl)s::bigint) "
    "ON CONFLICT (prefix, name) DO UPDATE SET holder = excluded.holder, "
    f"expires_at = excluded.expires_at WHERE l.holder = excluded.holder "
    f"OR l.expires_at <= {_NOW} RETURNING 1",
    "release": "DELETE FROM {locks} WHERE prefix = %(prefix)s AND name = %(name)s "
    f"AND holder = %(holder)s AND expires_at > {_NOW} RETURNING 1",
    "extend": f"UPDATE {{locks}} SET expires_at = {_NOW} + %(ttl)s::bigint "
    "WHERE prefix = %(prefix)s AND name = %(name)s "
    f"AND holder = %(holder)s AND expires_at > {_NOW} RETURNING 1",
    "force_release": "DELETE FROM {locks} WHERE prefix = %(prefix)s AND name = %(name)s",
    "holder": "SELECT holder FROM {locks} WHERE prefix = %(prefix)s AND name = %(name)s "
    f"AND expires_at > {_NOW}",
    "guard": "SELECT pg_advisory_xact_lock(hashtextextended(%(prefix)s || ' ' || %(name)s, 7))",
    "put_record": "INSERT INTO {locks} AS l (prefix, name, holder, expires_at) "
    f"VALUES (%(prefix)s, %(name)s, %(holder)s, {_NOW} + %(ttl)s::bigint) "
    "ON CONFLICT (prefix, name) DO UPDATE SET holder = excluded.holder, "
    "expires_at = excluded.expires_at",
    "drop_record": "DELETE FROM {locks} WHERE prefix = %(prefix)s AND name = %(name)s",
}


class CacheStatements:
    """Every statement of the cache, with the tables of ``schema`` filled in."""

    def __init__(self, schema: str) -> None:
        check_schema(schema)
        tables = {name: f'"{schema}".cache_{name}' for name in ("values", "locks", "tags", "stats")}
        self._text = {name: sql.format(**tables) for name, sql in _TEMPLATES.items()}

    def __getitem__(self, name: str) -> str:
        return self._text[name]
