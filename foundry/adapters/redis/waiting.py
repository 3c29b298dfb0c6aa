"""How long the ready jobs of some queues have waited, read without a script.

The ready set's score is ``(255 - priority) * BAND + seq``: the first member of each priority
band is the job next in line at that priority. Pipelined round trips find each band's head
and the earliest due delayed job (one, plus one per further priority in use), then the heads'
records say since when each has waited (one more).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
import redis

from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import from_ms, split_record
from foundry.adapters.redis.runner import call
from foundry.domain import ErrorInfo, Job, UndecodableJob

#: The width of one priority band of ready scores (as in the Lua library).
BAND = 2**44


@attrs.define
class _Walk:
    """One queue's search: the band heads found so far, and the band to look past next."""

    keys: QueueKeys
    heads: list[str] = attrs.Factory(list)
    band: int | None = None  # the last band found; None once there is none after it
    last_band: int = -1
    due: int | None = None  # run time (ms) of the earliest due delayed job


def oldest_ready_ages(
    client: redis.Redis,
    keys: Sequence[QueueKeys],
    clock: QueueClock,
    records: RecordCodec,
) -> list[timedelta | None]:
    """For each queue, the age of its longest-waiting ready job (see the port's promise)."""
    walks = [_Walk(k) for k in keys]
    now_ms = _first_pass(client, walks, clock)
    while any(walk.band is not None for walk in walks):
        _next_bands(client, walks)
    return _ages(client, walks, now_ms, records)


def _first_pass(client: redis.Redis, walks: list[_Walk], clock: QueueClock) -> int:
    pipe = client.pipeline(transaction=False)
    call(pipe, "TIME")
    for walk in walks:
        call(pipe, "ZRANGE", walk.keys.named("ready"), 0, 0, "WITHSCORES")
        call(pipe, "ZRANGE", walk.keys.named("ready"), -1, -1, "WITHSCORES")
        call(pipe, "ZRANGE", walk.keys.named("delayed"), 0, 0, "WITHSCORES")
    replies = pipe.execute()
    now_ms = clock.from_time(replies[0])
    for index, walk in enumerate(walks):
        first, last, delayed = replies[1 + 3 * index : 4 + 3 * index]
        if delayed and int(delayed[0][1]) <= now_ms:
            walk.due = int(delayed[0][1])
        if first:
            walk.heads.append(first[0][0].decode())
            walk.band = int(first[0][1]) // BAND
            walk.last_band = int(last[0][1]) // BAND
            if walk.band == walk.last_band:
                walk.band = None
    return now_ms


def _next_bands(client: redis.Redis, walks: list[_Walk]) -> None:
    walking = [walk for walk in walks if walk.band is not None]
    pipe = client.pipeline(transaction=False)
    for walk in walking:
        start = (walk.band + 1) * BAND  # type: ignore[operator]
        ready = walk.keys.named("ready")
        call(pipe, "ZRANGE", ready, start, "+inf", "BYSCORE", "LIMIT", 0, 1, "WITHSCORES")
    for walk, found in zip(walking, pipe.execute(), strict=True):
        if not found:
            walk.band = None
            continue
        walk.heads.append(found[0][0].decode())
        walk.band = int(found[0][1]) // BAND
        if walk.band >= walk.last_band:
            walk.band = None


def _ages(
    client: redis.Redis, walks: list[_Walk], now_ms: int, records: RecordCodec
) -> list[timedelta | None]:
    pipe = client.pipeline(transaction=False)
    for walk in walks:
        for job_id in walk.heads:
            for name in ("jobs", "errors"):
                call(pipe, "HGET", walk.keys.named(name), job_id)
    replies = iter(pipe.execute() if any(walk.heads for walk in walks) else [])
    now = from_ms(now_ms)
    ages: list[timedelta | None] = []
    for walk in walks:
        since = [from_ms(walk.due)] if walk.due is not None else []
        for job_id in walk.heads:
            value, errors = next(replies), next(replies)
            if value is not None:
                job = _decode(records, walk.keys.queue, job_id, value)
                since.append(_ready_since(job, value, records.errors(errors)))
        ages.append(max(now - min(since), timedelta(0)) if since else None)
    return ages


def _decode(records: RecordCodec, queue: str, job_id: str, value: bytes) -> Job | None:
    try:
        return records.decode_job(job_id, queue, value)
    except UndecodableJob:
        return None


def _ready_since(job: Job | None, value: bytes, errors: tuple[ErrorInfo, ...]) -> datetime:
    """The latest moment the job is known to have become ready: its (scheduled) enqueue, or
    its last failure."""
    enqueued = from_ms(split_record(value).enqueued_ms)
    since = job.run_at(enqueued) if job is not None else enqueued
    return max([since, *(error.at for error in errors if error.at is not None)])
