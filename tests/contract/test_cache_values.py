"""Contract: values by key (get, set, add, has, delete, pull, many) and bad input, every cache."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs
import pytest

from foundry.domain import InvalidCacheKey, InvalidCacheValue, UndecodableValue
from foundry.ports.cache import CachePort
from tests.backends import CacheBackend


class Colour(str, Enum):  # noqa: UP042 - the mixin older code uses; str() gives "Colour.RED"
    RED = "red"


@attrs.frozen
class Inventory:
    counts: dict[int, int]


@attrs.frozen
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    "value",
    [0, -7, 3.5, "text", "", True, None, [1, "two", None], {"nested": {"list": [1, 2]}}],
)
def test_a_stored_value_reads_back_equal(cache: CachePort, value: Any) -> None:
    cache.set("k", value)

    assert cache.get("k", "missing") == value


def test_an_attrs_value_reads_back_as_its_json_data(cache: CachePort) -> None:
    cache.set("point", Point(1, 2))

    assert cache.get("point") == {"x": 1, "y": 2}


@attrs.frozen
class Window:
    size: int = 10
    every: timedelta = timedelta(minutes=1)
    since: datetime | None = None


def test_an_attrs_value_keeps_its_fields_at_default_and_writes_times_as_json_would(
    cache: CachePort,
) -> None:
    since = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))

    cache.set("window", Window())
    cache.set("since", {"window": Window(since=since), "at": since, "day": since.date()})

    assert cache.get("window") == {"size": 10, "every": 60.0, "since": None}
    assert cache.get("since") == {
        "window": {"size": 10, "every": 60.0, "since": "2030-01-01T12:00:00+02:00"},
        "at": "2030-01-01T12:00:00+02:00",
        "day": "2030-01-01",
    }


def test_a_missing_key_gives_the_default(cache: CachePort) -> None:
    assert cache.get("nope") is None
    assert cache.get("nope", 5) == 5


def test_set_overwrites(cache: CachePort) -> None:
    cache.set("k", 1)

    cache.set("k", 2)

    assert cache.get("k") == 2


def test_add_stores_only_when_the_key_is_absent(cache: CachePort) -> None:
    first = cache.add("k", "first")

    second = cache.add("k", "second")

    assert (first, second) == (True, False)
    assert cache.get("k") == "first"


def test_has_delete_and_forever(cache: CachePort) -> None:
    cache.forever("k", "v")

    assert cache.has("k")
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert not cache.has("k")


def test_pull_returns_the_value_and_removes_it(cache: CachePort) -> None:
    cache.set("k", {"a": 1})

    pulled = cache.pull("k")

    assert pulled == {"a": 1}
    assert cache.pull("k", "gone") == "gone"
    assert not cache.has("k")


def test_get_many_returns_only_present_keys(cache: CachePort) -> None:
    cache.set("a", 1)
    cache.set("b", None)

    found = cache.get_many(["a", "b", "c"])

    assert found == {"a": 1, "b": None}


def test_set_many_and_delete_many(cache: CachePort) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})

    removed = cache.delete_many(["a", "b", "zzz"])

    assert removed == 2
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_empty_batches_are_fine(cache: CachePort) -> None:
    cache.set_many({})

    assert cache.get_many([]) == {}
    assert cache.delete_many([]) == 0


def test_keys_with_unicode_spaces_and_colons_are_distinct(cache: CachePort) -> None:
    keys = ["a:b", "a b", "ключ", "a" * 250, "*", "[x]"]

    cache.set_many({key: i for i, key in enumerate(keys)})

    assert cache.get_many(keys) == {key: i for i, key in enumerate(keys)}


@pytest.mark.parametrize(
    "key", ["", "a" * 251, "new\nline", "tab\there", "nul\x00", "del\x7f", "lone\udc80"]
)
def test_a_bad_key_is_rejected_and_nothing_is_written(cache: CachePort, key: str) -> None:
    with pytest.raises(InvalidCacheKey):
        cache.set(key, 1)
    with pytest.raises(InvalidCacheKey):
        cache.set_many({"good": 1, key: 2})

    assert not cache.has("good")


@pytest.mark.parametrize("method", ["get_many", "delete_many"])
def test_one_string_for_several_keys_is_refused_not_read_as_its_characters(
    cache: CachePort, method: str
) -> None:
    cache.set_many({"ab": 1, "a": 2})

    with pytest.raises(InvalidCacheKey, match=rf"{method} takes several keys"):
        getattr(cache, method)("ab")

    assert cache.get_many(["ab", "a"]) == {"ab": 1, "a": 2}


def test_set_many_refuses_what_is_not_a_mapping(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheValue, match="set_many takes a mapping of key to value"):
        cache.set_many([("a", 1)])  # type: ignore[arg-type]

    assert not cache.has("a")


def test_a_non_string_key_is_rejected(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheKey, match="must be a str"):
        cache.get(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [object(), Decimal("1.5"), 2**70, 1j, print, b"\x00\xff", float("nan"), {"a": [float("inf")]}],
)
def test_a_value_that_cannot_be_encoded_is_rejected_and_nothing_is_written(
    cache: CachePort, value: object
) -> None:
    cache.set("k", "old")

    with pytest.raises(InvalidCacheValue, match="cannot cache"):
        cache.set("k", value)
    with pytest.raises(InvalidCacheValue):
        cache.set_many({"other": 1, "k": value})

    assert cache.get("k") == "old"
    assert not cache.has("other")


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {"outer": {(1, 2): "a"}}, {None: 1}, {True: 1}, [{1.5: 1}], Inventory({7: 1})],
)
def test_a_dict_key_that_is_not_text_is_rejected_not_rewritten_as_text(
    cache: CachePort, value: object
) -> None:
    cache.set("k", "old")

    with pytest.raises(InvalidCacheValue, match="key"):
        cache.set("k", value)

    assert cache.get("k") == "old"


@attrs.define
class Node:
    name: str
    children: list[Node] = attrs.Factory(list)


def _cycle() -> Node:
    parent = Node("parent")
    parent.children.append(parent)
    return parent


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("make", [_cycle, lambda: _nested(5_000)], ids=["cycle", "deep"])
def test_a_value_that_refers_to_itself_or_nests_too_deep_is_rejected(
    cache: CachePort, make: Callable[[], object]
) -> None:
    value = make()

    with pytest.raises(InvalidCacheValue, match="cannot cache"):
        cache.set("k", value)
    with pytest.raises(InvalidCacheValue, match="cannot cache"):
        cache.remember("k", 10, lambda: value)

    assert not cache.has("k")


async def _profile() -> dict[str, str]:
    return {"name": "Ada"}


def test_an_async_function_s_coroutine_is_rejected_naming_await(cache: CachePort) -> None:
    pending = _profile()

    with pytest.raises(InvalidCacheValue, match="await"):
        cache.set("k", pending)
    with pytest.raises(InvalidCacheValue, match="await"):
        cache.remember("k", 10, lambda: pending)  # an async function passed as compute

    pending.close()
    assert not cache.has("k")


def test_a_text_enum_dict_key_reads_back_as_its_text(cache: CachePort) -> None:
    cache.set("k", {Colour.RED: 1, "plain": 2})

    assert cache.get("k") == {"red": 1, "plain": 2}


@pytest.mark.parametrize(
    "ttl",
    [-1, -0.5, -0.0001, timedelta(microseconds=-1), float("nan"), float("inf"), "10", True],
)
def test_a_bad_ttl_is_rejected_and_nothing_is_written(cache: CachePort, ttl: Any) -> None:
    with pytest.raises(InvalidCacheValue, match="ttl"):
        cache.set("k", 1, ttl)
    with pytest.raises(InvalidCacheValue, match="ttl"):
        cache.add("k", 1, ttl)

    assert not cache.has("k")


def test_an_undecodable_stored_value_raises_naming_the_key(
    cache: CachePort, cache_backend: CacheBackend
) -> None:
    cache_backend.corrupt(cache, "broken")

    with pytest.raises(UndecodableValue, match="broken"):
        cache.get("broken")
    with pytest.raises(UndecodableValue, match="broken"):
        cache.get_many(["fine", "broken"])
    assert cache.delete("broken") is True


def test_pulling_an_undecodable_value_raises_naming_the_key_and_keeps_it(
    cache: CachePort, cache_backend: CacheBackend
) -> None:
    cache_backend.corrupt(cache, "broken")

    with pytest.raises(UndecodableValue, match="broken"):
        cache.pull("broken")

    assert cache.has("broken")


#: Stored bodies a lenient JSON reader (Redis' cjson) takes but the cache's decoder refuses.
LENIENT_ONLY = {
    "NaN": b"NaN",
    "a number out of range": b"1e400",
    "invalid UTF-8": b'"\xff"',
    "a raw line break in a string": b'"a\nb"',
}


@pytest.mark.parametrize("body", LENIENT_ONLY.values(), ids=LENIENT_ONLY.keys())
def test_pull_keeps_any_value_the_decoder_refuses(
    cache: CachePort, cache_backend: CacheBackend, body: bytes
) -> None:
    cache_backend.corrupt(cache, "odd", body)

    with pytest.raises(UndecodableValue, match="odd"):
        cache.pull("odd")

    assert cache.has("odd")


def test_concurrent_pulls_of_one_value_give_it_to_exactly_one_caller(cache: CachePort) -> None:
    rounds, pullers = 20, 4
    cache.set_many({f"k{i}": i for i in range(rounds)})
    start = threading.Barrier(pullers)

    def pull_all() -> list[int]:
        start.wait()
        return [cache.pull(f"k{i}") for i in range(rounds)]

    with ThreadPoolExecutor(pullers) as pool:
        pulled = [v for got in pool.map(lambda _: pull_all(), range(pullers)) for v in got]

    assert sorted(v for v in pulled if v is not None) == list(range(rounds))
    assert cache.get_many([f"k{i}" for i in range(rounds)]) == {}


def test_batches_of_thousands_of_keys_work(cache: CachePort) -> None:
    values = {f"k{i}": i for i in range(2500)}
    cache.set_many(values)

    found = cache.get_many([*values, "absent"])

    assert found == values
    assert cache.delete_many(values) == 2500


def test_a_key_that_is_not_valid_utf8_is_rejected_naming_the_fix(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheKey, match="valid UTF-8"):
        cache.get("lone \ud800 surrogate")
    with pytest.raises(InvalidCacheKey, match="valid UTF-8"):
        cache.get_many(["fine", "lone \ud800 surrogate"])


def test_a_naive_datetime_is_rejected_naming_the_fix(cache: CachePort) -> None:
    with pytest.raises(InvalidCacheValue, match="timezone"):
        cache.set("k", datetime(2030, 1, 1))

    assert not cache.has("k")
