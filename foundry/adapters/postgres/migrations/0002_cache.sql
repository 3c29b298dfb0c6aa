-- The cache's tables (CACHE_DRIVER=postgres), beside the queue's in Foundry's schema.
--
-- UNLOGGED: their writes skip the write-ahead log, so a cache write costs about what a read
-- does and commits without waiting for a disk flush. The price, stated in docs/postgres.md:
-- a crash (not a clean restart) of the server empties them, and standbys do not have them.
-- Values, locks and effect records are all lost then, as they are with a Redis without
-- persistence.
--
-- Every table is keyed by the cache's prefix (CACHE_PREFIX), so namespaces share the tables
-- and clear() removes one namespace's rows only. Times are integer milliseconds since the
-- epoch on the cache's clock (the clock it is given, else the server's
-- statement_timestamp()); a row whose expires_at has come is absent, whether or not a sweep
-- has deleted it yet.
--
-- cache_values  a value: key is "<scope>:<key>", scope '' for plain keys and a digest of the
--               tags' versions for a tagged view's (flushing a tag changes the digest);
--               value is the codec's JSON; expires_at NULL means forever
-- cache_locks   who holds a lock ("lock:<name>"), a remember() computation
--               ("flight:<value key>") or an effect record ("effect:<key>", holder
--               "P:<fence>" or "D:<fence>"), until expires_at (always set)
-- cache_tags    each tag's version, bumped by flush()
-- cache_stats   hits, misses, writes and deletes, in a few rows per prefix (shard: the
--               writing process' id modulo 16) so that concurrent readers do not queue on
--               one row; stats() sums them

CREATE UNLOGGED TABLE cache_values (
    prefix text NOT NULL,
    key text NOT NULL,
    value bytea NOT NULL,
    expires_at bigint,
    PRIMARY KEY (prefix, key)
) WITH (fillfactor = 80);

CREATE UNLOGGED TABLE cache_locks (
    prefix text NOT NULL,
    name text NOT NULL,
    holder text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (prefix, name)
) WITH (fillfactor = 80);

CREATE UNLOGGED TABLE cache_tags (
    prefix text NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (prefix, name)
);

CREATE UNLOGGED TABLE cache_stats (
    prefix text NOT NULL,
    shard smallint NOT NULL,
    hits bigint NOT NULL DEFAULT 0,
    misses bigint NOT NULL DEFAULT 0,
    writes bigint NOT NULL DEFAULT 0,
    deletes bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (prefix, shard)
) WITH (fillfactor = 50);
