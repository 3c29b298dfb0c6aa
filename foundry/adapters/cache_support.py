"""What both cache adapters check the same way: keys, names, TTLs, counters and time in ms.

Every duration a cache adapter handles is whole milliseconds (Redis' resolution); a TTL with a
fraction of a millisecond is rounded up, so a positive TTL never becomes "already expired".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from foundry.domain import InvalidCacheKey, InvalidCacheValue
from foundry.ports.cache import Ttl

MAX_KEY_LENGTH = 250
#: Counters stay exact in a double (Lua's number) up to this magnitude.
MAX_COUNTER = 2**53 - 1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: The longest ttl, in ms: ``timedelta.max`` (about 2.7 million years). Every backend stores an
#: expiry this far from any clock; seconds beyond it would overflow Redis' and PostgreSQL's
#: 64-bit milliseconds.
MAX_TTL_MS = timedelta.max // _MS + 1  # its last fraction of a ms rounds up


def validate_key(key: object, what: str = "cache key") -> str:
    """``key`` if it is a storable key (or lock/tag name); ``InvalidCacheKey`` otherwise."""
    # The common key first, by two C string methods: an ASCII text is printable exactly when
    # it holds none of _CONTROL's characters (the regex search was half of this check).
    if type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable():
        return key
    if not isinstance(key, str):
        raise InvalidCacheKey(repr(key), f"a {what} must be a str, got {type(key).__name__}")
    if not key:
        raise InvalidCacheKey(key, f"a {what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidCacheKey(
            key, f"{len(key)} characters is over the {MAX_KEY_LENGTH} limit; hash long keys"
        )
    if _CONTROL.search(key):
        raise InvalidCacheKey(key, f"a {what} must not contain control characters")
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError as error:
            raise InvalidCacheKey(
                ascii(key), f"a {what} must be valid UTF-8 text ({error.reason} at {error.start})"
            ) from None
    return key


def key_list(keys: Iterable[str], method: str) -> list[str]:
    """``keys`` as a list; one string, which would be read as its characters, is refused."""
    if isinstance(keys, str | bytes):
        raise InvalidCacheKey(
            str(keys), f"{method} takes several keys; for one, pass a list: {method}([key])"
        )
    return list(keys)


def value_map(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """``values`` if it is a mapping of key to value (``set_many``'s argument)."""
    if not isinstance(values, Mapping):
        raise InvalidCacheValue(
            f"set_many takes a mapping of key to value, got a {type(values).__name__}; "
            "pass a dict, e.g. set_many({'a': 1})"
        )
    return values


def validate_keys(keys: list[str]) -> list[str]:
    """``keys`` if every one is storable (one pass for a batch); else the first one's error."""
    if (
        all(type(key) is str for key in keys)
        and _CONTROL.search("".join(keys)) is None
        and all(0 < len(key) <= MAX_KEY_LENGTH for key in keys)
        and _utf8("".join(keys))
    ):
        return keys
    for key in keys:
        validate_key(key)
    return keys


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def validate_prefix(prefix: str) -> str:
    """``prefix`` if it is a usable namespace (letters, digits, ``_.:-``; no glob characters)."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise InvalidCacheKey(str(prefix), "CACHE_PREFIX must be 1-100 letters, digits or '_.:-'")
    return prefix


def ttl_ms(ttl: Ttl, what: str = "ttl") -> int | None:
    """``ttl`` in whole milliseconds (rounded up), ``None`` for forever.

    Raises ``InvalidCacheValue`` for a negative, non-finite or non-numeric ttl, or one longer
    than ``timedelta.max``.
    """
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        micros = (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds
        return _within_range(micros < 0, -(-micros // 1000), ttl, what)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidCacheValue(
            f"{what} must be seconds or a timedelta (None for forever), got {ttl!r}"
        )
    if not math.isfinite(ttl):
        raise InvalidCacheValue(f"{what} must be finite, got {ttl!r}; use None for forever")
    # Whole microseconds first, as timedelta(seconds=ttl) takes them: 16.1 * 1000 is
    # 16100.000000000002 in binary floating point, which would round up to 16101 ms.
    ms = -(-round(ttl * 1_000_000) // 1000)
    return _within_range(ttl < 0, ms or (1 if ttl > 0 else 0), ttl, what)


def _within_range(negative: bool, ms: int, ttl: object, what: str) -> int:
    # The sign is the given ttl's: -0.0004 s rounds up to 0 ms, and 0 would delete the value.
    if negative:
        raise InvalidCacheValue(f"{what} must not be negative, got {ttl!r}")
    if ms > MAX_TTL_MS:
        raise InvalidCacheValue(
            f"{what} {ttl!r} is longer than the longest one, timedelta.max "
            f"({MAX_TTL_MS // 1000} s); use None for forever"
        )
    return ms


def positive_ms(ttl: Ttl, what: str) -> int:
    """A duration that must be given and positive (lock ttls, remember's wait)."""
    ms = ttl_ms(ttl, what)
    if not ms:
        raise InvalidCacheValue(
            f"{what} must be a positive duration, got {ttl!r}; "
            "it bounds how long a dead owner can block others"
        )
    return ms


def to_ms(moment: datetime) -> int:
    """A timezone-aware datetime as integer milliseconds since the epoch."""
    return (moment - _EPOCH) // _MS


def validate_step(by: object) -> int:
    """An increment step: an int within the exact counter range."""
    if isinstance(by, bool) or not isinstance(by, int):
        raise InvalidCacheValue(f"increment step must be an int, got {by!r}")
    if abs(by) > MAX_COUNTER:
        raise InvalidCacheValue(f"increment step {by} is beyond ±{MAX_COUNTER}")
    return by


def add_to_counter(key: str, current: Any, by: int) -> int:
    """``current + by`` if ``current`` is an integer counter, ``InvalidCacheValue`` otherwise."""
    if isinstance(current, bool) or not isinstance(current, int):
        raise InvalidCacheValue(
            f"cannot increment {key!r}: it holds a {type(current).__name__}, not an integer; "
            "delete it or use another key for the counter"
        )
    result = current + by
    if abs(result) > MAX_COUNTER:
        raise InvalidCacheValue(f"counter {key!r} would leave ±{MAX_COUNTER} (exact range)")
    return result


def tag_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Validated, de-duplicated, sorted tag names (order does not matter)."""
    if not names:
        raise InvalidCacheKey("", "tags() needs at least one tag name")
    given: tuple[object, ...] = names  # typed str; a Laravel habit passes one list
    listed = [name for name in given if isinstance(name, list | tuple | set | frozenset)]
    if listed:
        spread = ", ".join(repr(item) for item in listed[0])
        raise InvalidCacheKey(
            str(listed[0]), f"pass tag names as separate arguments, tags({spread}), not a list"
        )
    return tuple(sorted({validate_key(name, "tag name") for name in names}))
