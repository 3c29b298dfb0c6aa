"""The storage keys of one memory cache namespace: a kind, then names, joined by ``SEP``.

``v`` values, ``t`` tagged values (after their tags' versions), ``lock`` and ``flight``
locks, ``effect`` effect records. Keys hold no control characters, so none can be another's.
"""

from __future__ import annotations

from collections.abc import Iterable

from foundry.adapters.cache_support import validate_key

SEP = "\x1f"


def value_key(key: str) -> str:
    """Where the value of ``key`` is stored."""
    return "v" + SEP + validate_key(key)


def tagged_key(versions: Iterable[tuple[str, int]], key: str) -> str:
    """Where the value of ``key`` is stored under the tag versions ``(name, version)``."""
    scope = SEP.join(f"{name}\x1e{version}" for name, version in versions)
    return "t" + SEP + scope + SEP + key


def lock_key(name: str) -> str:
    """The lock ``name``."""
    return "lock" + SEP + validate_key(name, "lock name")


def flight_key(skey: str) -> str:
    """The lock guarding the computation of the value at ``skey``."""
    return "flight" + SEP + skey


def effect_key(key: str) -> str:
    """The record of the effect ``key``."""
    return "effect" + SEP + validate_key(key)
