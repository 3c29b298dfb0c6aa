"""RedisCache beyond the shared contract: namespaces, fleet-wide state, Redis' own expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.cache import RedisCache
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.domain import (
    CacheError,
    CacheUnavailable,
    ConfigurationError,
    InvalidCacheKey,
    UndecodableValue,
)
from foundry.ports.cache import CacheStats
from tests.backends import redis_cache, unique_prefix
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


def test_every_key_lives_under_the_prefix(redis_url: str, clock: ManualClock) -> None:
    cache = redis_cache(redis_url, clock)
    cache.set("a", 1)
    cache.tags("t").set("b", 2)
    cache.tags("t").flush()
    cache.lock("l", 10).acquire(blocking=False)
    cache.remember("r", 10, lambda: 3)

    keys = {bytes(k).decode() for k in cache._c.client.scan_iter(match="*")}
    mine = {k for k in keys if k.startswith(cache._c.prefix + ":")}

    assert mine
    assert not {k for k in keys if cache._c.prefix in k} - mine


def test_clear_removes_only_this_namespace_in_batches(redis_url: str, clock: ManualClock) -> None:
    prefix = unique_prefix()
    cache, neighbour = redis_cache(redis_url, clock, prefix), redis_cache(redis_url, clock)
    lookalike = redis_cache(redis_url, clock, prefix + "-x")
    cache.set_many({f"k{i}": i for i in range(2500)})
    neighbour.set("k1", "kept")
    lookalike.set("k1", "kept too")
    cache._c.client.set(f"{prefix}v:k1", "foreign")

    cache.clear()

    assert cache.get_many([f"k{i}" for i in range(2500)]) == {}
    assert neighbour.get("k1") == "kept"
    assert lookalike.get("k1") == "kept too"
    assert cache._c.client.get(f"{prefix}v:k1") == b"foreign"


def test_two_clients_on_one_prefix_share_values_tags_and_stats(
    redis_url: str, clock: ManualClock
) -> None:
    prefix = unique_prefix()
    one, two = redis_cache(redis_url, clock, prefix), redis_cache(redis_url, clock, prefix)
    one.set("k", "v")
    one.tags("t").set("tagged", 1)

    seen = two.get("k")
    two.get("missing")
    two.tags("t").flush()

    assert seen == "v"
    assert one.tags("t").get("tagged") is None
    assert one.stats() == two.stats()
    assert one.stats().hits == 1
    assert one.stats().misses == 2


def test_without_a_clock_redis_expires_the_key_itself(redis_url: str) -> None:
    cache = redis_cache(redis_url, None)

    cache.set("k", "v", timedelta(seconds=30))

    ttl = cache._c.client.pttl(f"{cache._c.prefix}:v:k")
    assert 0 < ttl <= 30_000
    assert cache.get("k") == "v"


def test_with_a_test_clock_redis_never_expires_a_key_before_the_clock_says(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)

    cache.set("k", "v", 1)
    cache.increment("n")

    assert cache._c.client.pttl(f"{cache._c.prefix}:v:k") >= 1000
    assert cache._c.client.pttl(f"{cache._c.prefix}:v:n") == -1


@pytest.mark.parametrize(
    "poke",
    [
        lambda client, key: client.set(key, b"plain text, no header"),
        lambda client, key: client.hset(key, "field", "value"),
    ],
)
def test_a_key_written_by_someone_else_is_undecodable_naming_it(
    redis_url: str, clock: ManualClock, poke: Callable[..., object]
) -> None:
    cache = redis_cache(redis_url, clock)
    poke(cache._c.client, f"{cache._c.prefix}:v:foreign")

    with pytest.raises(UndecodableValue, match="foreign"):
        cache.get("foreign")
    with pytest.raises(UndecodableValue, match="foreign"):
        cache.increment("foreign")


@pytest.mark.parametrize("foreign", [b"plain text, no header", b"0:not json"])
def test_pulling_a_string_someone_else_wrote_raises_and_keeps_it(
    redis_url: str, clock: ManualClock, foreign: bytes
) -> None:
    cache = redis_cache(redis_url, clock)
    key = f"{cache._c.prefix}:v:foreign"
    cache._c.client.set(key, foreign)

    with pytest.raises(UndecodableValue, match="foreign"):
        cache.pull("foreign")

    assert cache._c.client.get(key) == foreign


def test_pull_deletes_only_the_value_it_read_and_decoded(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    cache.set("k", "new")
    skey = cache._c.keys.value("k")
    keys = (skey, cache._c.keys.stats_of(skey))

    # A pull's delete step after another writer replaced the value it decoded.
    held = cache._c.run("pull", keys, (cache._c.now(), b'0:"old"'), "k", resend=False)

    assert held == b'0:"new"'
    assert cache.get("k") == "new"
    assert cache.pull("k") == "new"
    assert not cache.has("k")


#: What another program may leave at a namespace's stats key.
FOREIGN_STATS: dict[str, Callable[[redis.Redis, str], object]] = {
    "a string": lambda client, key: client.set(key, "x"),
    "a list": lambda client, key: client.rpush(key, "x"),
    "a hash whose hits are text": lambda client, key: client.hset(key, "hits", "many"),
    "a hash whose misses are a fraction": lambda client, key: client.hset(key, "misses", "1.5"),
}


@pytest.mark.parametrize("poke", FOREIGN_STATS.values(), ids=FOREIGN_STATS.keys())
def test_a_broken_stats_key_breaks_no_value_call_and_stats_names_it_and_the_fix(
    redis_url: str, clock: ManualClock, poke: Callable[[redis.Redis, str], object]
) -> None:
    cache = redis_cache(redis_url, clock)
    stats_key = f"{cache._c.prefix}:stats"
    cache.set("kept", 1)
    cache.set("pulled", 2)
    cache._c.client.delete(stats_key)
    poke(cache._c.client, stats_key)

    cache.set("k", "v")
    seen = (cache.get("k"), cache.get("missing"), cache.get_many(["k", "missing"]))
    added, pulled = cache.add("added", 3), cache.pull("pulled")
    cache.set_many({"a": 1, "b": 2})
    counted, deleted = cache.increment("n"), cache.delete_many(["a", "missing"])
    remembered = cache.remember("r", 10, lambda: "computed")
    with pytest.raises(CacheError, match=f"{stats_key}.*DEL {stats_key}") as raised:
        cache.stats()

    assert seen == ("v", None, {"k": "v"})
    assert (added, pulled, counted, deleted, remembered) == (True, 2, 1, 1, "computed")
    assert not cache.has("pulled")
    assert cache.get_many(["kept", "b", "r"]) == {"kept": 1, "b": 2, "r": "computed"}
    assert "values are not affected" in str(raised.value)


def test_stats_leave_out_fields_someone_else_added_to_the_stats_hash(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    stats_key = f"{cache._c.prefix}:stats"
    cache._c.client.hset(stats_key, mapping={"owner": "ops-team", "hits_total": "7"})

    cache.set("k", "v")
    cache.get("k")
    cache.get("missing")

    assert cache.stats() == CacheStats(hits=1, misses=1, writes=1)


def test_a_tag_version_someone_else_wrote_is_undecodable_naming_its_key(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    tag_key = cache._c.keys.tag("users")
    cache._c.client.set(tag_key, b"not a number")
    view = cache.tags("users")

    with pytest.raises(UndecodableValue, match=f"{tag_key}.*tag 'users'"):
        view.get("k")
    with pytest.raises(UndecodableValue, match=f"{tag_key}.*tag 'users'"):
        view.flush()

    cache._c.client.delete(tag_key)  # the fix the error names
    view.set("k", 1)
    assert view.get("k") == 1


def test_a_lock_someone_else_wrote_in_another_encoding_is_not_owned(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    cache._c.client.set(cache._c.keys.lock("report"), b"0:\xff\xfe")

    assert not cache.lock("report", 10).owned()


def test_the_lua_library_is_reloaded_after_a_function_flush(
    redis_server_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_server_factory()
    cache = redis_cache(server.url, clock)
    cache.set("k", 1)

    server.client().function_flush()

    assert cache.get("k") == 1
    assert cache.increment("n") == 1  # not re-sendable, yet sent again: it never ran


def test_an_unreachable_redis_is_cache_unavailable(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings = RedisSettings(url=server.url, retries=0, connect_timeout=timedelta(seconds=1))
    cache = RedisCache(connect(settings), unique_prefix())
    server.kill()

    with pytest.raises(CacheUnavailable, match="REDIS_URL"):
        cache.get("k")


@pytest.mark.parametrize("kind", ["v", "t", "tag", "lock", "flight", "effect", "stats"])
def test_a_prefix_that_would_share_keys_with_a_shorter_one_is_refused(
    redis_url: str, clock: ManualClock, kind: str
) -> None:
    outer = unique_prefix()

    with pytest.raises(InvalidCacheKey, match=f"CACHE_PREFIX.*'{kind}'.*{outer}"):
        redis_cache(redis_url, clock, f"{outer}:{kind}:app")


def test_nested_prefixes_keep_their_values_tags_and_clear_apart(
    redis_url: str, clock: ManualClock
) -> None:
    outer = unique_prefix()
    app, nested = redis_cache(redis_url, clock, outer), redis_cache(redis_url, clock, outer + ":v2")
    nested.set("k", "nested")
    nested.tags("x").set("k", "nested tagged")
    app.set("v2:v:k", "app")

    app.clear()
    app.tags("x").flush()

    assert nested.get("k") == "nested"
    assert nested.tags("x").get("k") == "nested tagged"
    assert app.get("v2:v:k") is None


def _evict_tag(cache: RedisCache, name: str) -> None:
    """Drop a tag's version key, as Redis does under an ``allkeys-*`` eviction policy."""
    cache._c.client.delete(cache._c.keys.tag(name))


def test_a_flushed_value_stays_gone_when_its_tag_version_is_evicted(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    cache.tags("posts").set("latest", "old")
    cache.tags("posts").flush()

    _evict_tag(cache, "posts")

    assert cache.tags("posts").get("latest") is None
    cache.tags("posts").set("latest", "new")
    assert cache.tags("posts").get("latest") == "new"


def test_a_flush_after_its_tag_version_was_evicted_reuses_no_old_version(
    redis_url: str, clock: ManualClock
) -> None:
    cache = redis_cache(redis_url, clock)
    posts = cache.tags("posts")
    posts.flush()
    posts.set("latest", "flushed later")
    posts.flush()
    _evict_tag(cache, "posts")

    posts.flush()

    assert posts.get("latest") is None


def test_a_client_that_decodes_replies_is_refused_naming_the_fix(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)  # a common app default

    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisCache(client, unique_prefix())
