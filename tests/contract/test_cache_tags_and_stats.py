"""Contract: tagged views and their O(1) flush, clear, and statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import InvalidCacheKey
from foundry.ports.cache import CachePort, CacheStats, TaggedCache


def test_flush_invalidates_every_key_written_through_the_view(cache: CachePort) -> None:
    users = cache.tags("users")
    users.set_many({"a": 1, "b": 2})
    users.increment("count")

    users.flush()

    assert users.get_many(["a", "b", "count"]) == {}
    assert not users.has("a")


def test_flushing_one_tag_invalidates_every_view_that_has_it(cache: CachePort) -> None:
    both, users, posts = cache.tags("users", "posts"), cache.tags("users"), cache.tags("posts")
    both.set("k", "both")
    users.set("k", "users")
    posts.set("k", "posts")

    cache.tags("users").flush()

    assert both.get("k") is None
    assert users.get("k") is None
    assert posts.get("k") == "posts"


def test_tagged_and_untagged_keys_are_separate(cache: CachePort) -> None:
    cache.set("k", "plain")
    cache.tags("t").set("k", "tagged")

    cache.tags("t").flush()

    assert cache.get("k") == "plain"


def test_tag_order_does_not_matter(cache: CachePort) -> None:
    cache.tags("a", "b").set("k", 1)

    assert cache.tags("b", "a").get("k") == 1


def test_a_view_written_after_a_flush_is_visible_again(cache: CachePort) -> None:
    view = cache.tags("t")
    view.set("k", "old")
    view.flush()

    view.set("k", "new")

    assert view.get("k") == "new"


def test_a_tagged_view_supports_the_whole_store(cache: CachePort, clock: ManualClock) -> None:
    view = cache.tags("t")
    view.set("ttl", 1, 5)
    view.add("added", 2)
    view.forever("kept", 3)
    remembered = view.remember("r", 10, lambda: 4)
    clock.advance(5)

    assert isinstance(view, TaggedCache)
    assert remembered == 4
    assert view.get_many(["ttl", "added", "kept", "r"]) == {"added": 2, "kept": 3, "r": 4}
    assert view.pull("added") == 2
    assert view.touch("kept", 1)
    assert view.delete_many(["kept", "r"]) == 2


def test_a_flushed_view_of_the_same_tags_built_elsewhere_sees_the_flush(
    cache: CachePort,
) -> None:
    writer = cache.tags("t")
    writer.set("k", 1)

    cache.tags("t").flush()

    assert writer.get("k") is None


def test_tags_need_valid_names(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheKey):
        cache.tags()
    with pytest.raises(InvalidCacheKey):
        cache.tags("ok", "bad\x00")


def test_tags_given_as_one_list_are_refused_naming_the_call_that_works(
    cache: CachePort,
) -> None:
    with pytest.raises(InvalidCacheKey, match=r"tags\('people', 'artists'\)"):
        cache.tags(["people", "artists"])  # type: ignore[arg-type]


def test_clear_removes_every_value_tagged_or_not(cache: CachePort) -> None:
    cache.set_many({"a": 1, "b": 2})
    cache.tags("t").set("c", 3)

    cache.clear()

    assert cache.get_many(["a", "b"]) == {}
    assert cache.tags("t").get("c") is None
    cache.set("a", 4)
    assert cache.get("a") == 4


def test_stats_count_hits_misses_writes_and_deletes(cache: CachePort) -> None:
    cache.set("a", 1)
    cache.set_many({"b": 2, "c": 3})
    cache.get("a")
    cache.get("missing")
    cache.get_many(["b", "c", "missing"])
    cache.delete("a")
    cache.has("b")

    stats = cache.stats()

    assert stats == CacheStats(hits=3, misses=2, writes=3, deletes=1, evictions=0)
    assert stats.hit_rate == pytest.approx(0.6)


def test_stats_start_at_zero(cache: CachePort) -> None:
    assert cache.stats() == CacheStats()
    assert cache.stats().hit_rate == 0.0


def test_a_cache_satisfies_the_port(cache: CachePort) -> None:
    assert isinstance(cache, CachePort)
    assert isinstance(cache.tags("t"), TaggedCache)


def test_values_expire_in_tagged_views_too(cache: CachePort, clock: ManualClock) -> None:
    view = cache.tags("t")
    view.set("k", 1, timedelta(seconds=1))

    clock.advance(1)

    assert view.get("k") is None
