"""A queue Redis refuses to work on: an error reply (a key of the wrong type, a script error)
is not an outage. The queue is named, and the key whose type is wrong when one is, so an
operator can fix or delete it while the other queues are served. A master refusing every
write for now, for want of replicas (``NOREPLICAS``) or of memory (``OOM``), is no queue's
fault: an outage."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from foundry.adapters.redis.durability import WritesRefused, refused_for_now
from foundry.adapters.redis.errors import refused
from foundry.adapters.redis.keys import QUEUE_KEY_NAMES, QueueKeys
from foundry.domain import ConfigurationError, QueueBroken, QueueUnavailable

#: The Redis type each queue key holds (the key table in lua/_head.lua): the functions' KEYS,
#: then the keys of one name each that they name from the queue's base (the functions check
#: them too before writing: `EVERY_KEY` in lua/_queue.lua).
_TYPES = ("hash", "hash", "hash", "hash", "zset", "zset", "zset", "zset", "zset", "hash", "list")
_NAMED_FROM_BASE = {
    "fifo": "list",
    "ahead": "hash",
    "stop": "hash",
    "deps": "hash",
    "dependants": "hash",
    "progress": "hash",
    "waiters": "hash",
    "batchof": "hash",
    "cbof": "hash",
    "batches": "zset",
    "batches:end": "zset",
}
KEY_TYPES = {**dict(zip(QUEUE_KEY_NAMES, _TYPES, strict=True)), **_NAMED_FROM_BASE}
#: ``KEY_TYPES`` and the queue's schedule keys (``schedules.py``), checked when a schedule
#: function's reply is an error.
WITH_SCHEDULES = {**KEY_TYPES, "sched:due": "zset", "sched:rec": "hash"}


def checked_keys(keys: QueueKeys, types: Mapping[str, str] = KEY_TYPES) -> list[str]:
    """The keys whose type ``wrong_types`` checks, in its order: those ``types`` names (by
    their name after the queue's base)."""
    return [keys.named(name) for name in types]


def misplaced(
    client: redis.Redis, keys: QueueKeys, types: Mapping[str, str] = KEY_TYPES
) -> list[str]:
    """The queue's keys that hold another type than ``types`` says (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for key in checked_keys(keys, types):
        pipe.type(key)
    return wrong_types(keys, pipe.execute(), types)


def wrong_types(
    keys: QueueKeys, replies: list[Any], types: Mapping[str, str] = KEY_TYPES
) -> list[str]:
    """What is wrong, given the ``TYPE`` replies of ``checked_keys(keys, types)`` in order."""
    found = []
    for key, wanted, reply in zip(checked_keys(keys, types), types.values(), replies, strict=True):
        kind = reply.decode() if isinstance(reply, bytes) else str(reply)
        if kind not in ("none", wanted):
            found.append(f"{key} is a {kind}, not a {wanted}")
    return found


def broken(
    client: redis.Redis,
    keys: QueueKeys,
    error: redis.ResponseError,
    types: Mapping[str, str] = KEY_TYPES,
) -> QueueUnavailable | ConfigurationError:
    """Our error for an error reply met working on ``keys``' queue, naming its keys whose type
    is not the one ``types`` gives."""
    try:
        wrong = misplaced(client, keys, types)
    except redis.RedisError:
        wrong = []
    return queue_broken(keys, wrong, error)


def queue_broken(
    keys: QueueKeys, wrong: list[str], error: redis.ResponseError
) -> QueueUnavailable | ConfigurationError:
    """The error naming ``keys``' queue, its ``wrong`` keys (if known) and Redis's reply; a
    reply about the connection's settings (a database the server does not have) is no
    queue's, but a ``ConfigurationError`` naming the fix, and a master refusing writes for
    now an outage (``QueueUnavailable``)."""
    if refused_for_now(error):
        return QueueUnavailable(
            f"Redis refused a write to queue {keys.queue!r}: {WritesRefused(error)}"
        )
    detail = f"{'; '.join(wrong)} ({error})" if wrong else f"Redis answered {error}"
    return refused(error) or QueueBroken(keys.queue, detail)


@contextmanager
def refusing(client: redis.Redis, keys: QueueKeys) -> Iterator[None]:
    """Turn an error reply raised inside into ``QueueBroken`` for ``keys``' queue."""
    try:
        yield
    except redis.ResponseError as error:
        raise broken(client, keys, error) from error


@contextmanager
def refusing_any(client: redis.Redis, queues: Sequence[QueueKeys]) -> Iterator[None]:
    """``refusing`` for a read over several queues: an error reply is ``QueueBroken`` for the
    first of ``queues`` holding a key of the wrong type (one round trip each until found);
    when none does, the error goes on as it is."""
    try:
        yield
    except redis.ResponseError as error:
        for keys in queues:
            try:
                wrong = misplaced(client, keys)
            except redis.RedisError:
                break
            if wrong:
                raise queue_broken(keys, wrong, error) from error
        raise
