"""One queue's jobs in one state, for inspection: ids from the state's sorted set, then the
records in one pipeline (the same fields ``get`` reads). No script."""

from __future__ import annotations

from collections.abc import Callable

import redis

from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.overview import BAND, FIFO_BAND
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import state_or_none, stored_priority
from foundry.adapters.redis.runner import call
from foundry.domain import JobState
from foundry.ports.inspection import JobRecord

_FIELDS = ("jobs", "state", "errors", "results", "progress")


def list_jobs(
    client: redis.Redis,
    keys: QueueKeys,
    state: JobState,
    window: tuple[int, int, int],
    records: RecordCodec,
) -> list[JobRecord]:
    """Records of the jobs in ``state``; ``window`` = (offset, limit, now ms); see the port."""
    offset, limit, now_ms = window
    ids = _IDS[state](client, keys, offset, limit, now_ms) if limit > 0 and offset >= 0 else []
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        for name in _FIELDS:
            call(pipe, "HGET", keys.named(name), job_id)
        for name in ("delayed", "done"):
            call(pipe, "ZSCORE", keys.named(name), job_id)
    replies = pipe.execute()
    width = len(_FIELDS) + 2
    found = []
    for index, job_id in enumerate(ids):
        fields = replies[index * width : (index + 1) * width]
        if fields[0] is not None:
            record = records.record(keys.queue, job_id, fields, now_ms, state)
            if record is not None and record.state is state:
                found.append(record)
    return found


def _ready(client: redis.Redis, keys: QueueKeys, offset: int, limit: int, now: int) -> list[str]:
    """Claim order: the ready set by score and the fifo (pairs of id and seq, priority 0),
    merged with the due delayed jobs a claim would move in (their score is made from their
    priority and stored sequence number, as it would)."""
    pipe = client.pipeline(transaction=False)
    call(pipe, "ZRANGE", keys.named("ready"), 0, offset + limit - 1, "WITHSCORES")
    call(pipe, "LRANGE", keys.named("fifo"), 0, 2 * (offset + limit) - 1)
    call(pipe, "ZRANGE", keys.named("delayed"), "-inf", now, "BYSCORE", "LIMIT", 0, offset + limit)
    ready, listed, due = pipe.execute()
    ranked = [(float(score), raw.decode()) for raw, score in ready]
    pairs = zip(listed[::2], listed[1::2], strict=True)
    ranked += [(FIFO_BAND + int(seq), raw.decode()) for raw, seq in pairs]
    ranked.sort()
    if due:
        pipe = client.pipeline(transaction=False)
        for raw in due:
            call(pipe, "HGET", keys.named("jobs"), raw)
            call(pipe, "HGET", keys.named("state"), raw)
        found = pipe.execute()
        for index, raw in enumerate(due):
            value, state = found[2 * index], found[2 * index + 1]
            if value is not None:
                priority = stored_priority(value) or 0  # corrupt: shown, as priority 0
                ranked.append(((255 - priority) * BAND + _seq(state), raw.decode()))
        ranked.sort()
    return [job_id for _, job_id in ranked[offset : offset + limit]]


def _seq(value: bytes | None) -> int:
    """A stored state's seq; 0 (first) for a corrupt one, so the job is shown, undecodable."""
    state = state_or_none(value)
    return 0 if state is None else state.seq


def _letter(value: bytes) -> str | None:
    """A stored state's letter, ``None`` for a corrupt one (listed among both ended states:
    which it is cannot be told)."""
    state = state_or_none(value)
    return None if state is None else state.letter


def _delayed(client: redis.Redis, keys: QueueKeys, offset: int, limit: int, now: int) -> list[str]:
    ids = call(
        client,
        "ZRANGE",
        keys.named("delayed"),
        f"({now}",
        "+inf",
        "BYSCORE",
        "LIMIT",
        offset,
        limit,
    )
    return [raw.decode() for raw in ids]


def _waiting(client: redis.Redis, keys: QueueKeys, offset: int, limit: int, _: int) -> list[str]:
    """Waiting jobs, in the order of their enqueue (their seq)."""
    ids = call(client, "HKEYS", keys.named("deps"))
    states = call(client, "HMGET", keys.named("state"), *ids) if ids else []
    ranked = sorted((_seq(state), raw.decode()) for raw, state in zip(ids, states, strict=True))
    return [job_id for _, job_id in ranked[offset : offset + limit]]


def _by_rank(name: str, newest_first: bool) -> Callable[..., list[str]]:
    def ids(client: redis.Redis, keys: QueueKeys, offset: int, limit: int, _: int) -> list[str]:
        command = "ZREVRANGE" if newest_first else "ZRANGE"
        found = call(client, command, keys.named(name), offset, offset + limit - 1)
        return [raw.decode() for raw in found]

    return ids


def _ended(letter: str) -> Callable[..., list[str]]:
    """Completed (``C``) or cancelled (``N``) jobs, newest first. Both share the ``done``
    index, so it is read newest first in chunks, each id's state checked, until ``offset`` +
    ``limit`` jobs of this state are found or the index ends: a page is full whatever the
    other state's jobs between them."""

    def ids(client: redis.Redis, keys: QueueKeys, offset: int, limit: int, _: int) -> list[str]:
        wanted = offset + limit
        step = min(max(wanted, _ENDED_CHUNK), _ENDED_CHUNK_MAX)
        found: list[str] = []
        start = 0
        while len(found) < wanted:
            chunk = call(client, "ZREVRANGE", keys.named("done"), start, start + step - 1)
            if not chunk:
                break
            states = call(client, "HMGET", keys.named("state"), *chunk)
            found += [
                raw.decode()
                for raw, state in zip(chunk, states, strict=True)
                if state is not None and _letter(state) in (letter, None)
            ]
            start += step
        return found[offset:wanted]

    return ids


#: The fewest and the most ids of the ``done`` index one round trip of ``_ended`` examines
#: (a deep page is read in several, so no one command holds Redis long).
_ENDED_CHUNK = 200
_ENDED_CHUNK_MAX = 2000

_IDS: dict[JobState, Callable[[redis.Redis, QueueKeys, int, int, int], list[str]]] = {
    JobState.READY: _ready,
    JobState.DELAYED: _delayed,
    JobState.ACTIVE: _by_rank("leases", newest_first=False),
    JobState.COMPLETED: _ended("C"),
    JobState.DEAD: _by_rank("dead", newest_first=True),
    JobState.CANCELLED: _ended("N"),
    JobState.WAITING: _waiting,
}
