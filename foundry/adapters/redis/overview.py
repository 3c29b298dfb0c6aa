"""Readings over many queues at once, without scripts: ``stats_many`` and
``oldest_ready_ages``, for dashboards and metrics that show every queue.

``stats_many`` reads every queue's sizes and totals in one MULTI/EXEC block of plain commands
(one Redis, not Cluster: the admin reads a cluster through the ``stats`` function instead):
the same figures as the ``stats`` function at a fifth of its Redis time, since a function
call's setup outweighs six O(1)/O(log n) reads; one block rather than one per queue saves
Redis a MULTI and an EXEC per queue, a sixth of the sweep.

The ready set's score is ``(255 - priority) * BAND + seq``: the first member of each priority
band is the job next in line at that priority. Pipelined round trips read both ends of each
ready set, its first delayed job and the head of its fifo (the jobs enqueued ready at
priority 0, oldest first), then the records of the head (since when it waited) and
of the tail (whose priority says whether more bands lie between), then one per further band.
Scores are asked for only where needed: formatting them is most of a ZRANGE's cost.

The reads go on the runner's own connection (``PackedReads``: each command packed once and
kept, the replies read with hiredis; a quarter of the client CPU of redis-py's pipeline, the
same Redis time, which follows the keys touched); on Redis Cluster through redis-py's
pipeline, which routes each read by its key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import redis

from foundry.adapters.redis.broken import broken
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import Stored, from_ms, split_record, stored_priority
from foundry.adapters.redis.runner import Arg, FunctionRunner, call, pack_command
from foundry.domain import ErrorInfo, UndecodableJob
from foundry.ports.inspection import QueueStats

#: One plain command, its arguments.
Command = tuple[Arg, ...]
#: Sends plain read commands together and returns their replies in order, an error reply in
#: its place: ``PackedReads``, or ``pipelined`` where the runner routes by key.
Reads = Callable[[Sequence[Command]], list[Any]]
#: Commands ``PackedReads`` keeps packed, at most: a hundred queues' reads are about 1,500.
_KEPT = 8192

#: The width of one priority band of ready scores (as in the Lua library).
BAND = 2**44
#: A fifo entry's score, were it in the ready set: priority 0's band (plus its seq).
FIFO_BAND = 255 * BAND
_TOTALS = ("paused", "completed", "failed", "dead_trimmed", "stale_rejected")


class PackedReads:
    """``Reads`` on the runner's own connection (``FunctionRunner.read_many``). Each command
    is packed once and kept: a dashboard or a scrape reads the same keys every time, and
    packing them was a third of the reads' client CPU. Past ``_KEPT`` commands (the job ids
    and times of earlier readings among them) all are dropped, and kept again as used."""

    def __init__(self, runner: FunctionRunner) -> None:
        self._runner = runner
        self._kept: dict[Command, bytes] = {}

    def __call__(self, commands: Sequence[Command]) -> list[Any]:
        kept = self._kept
        packed = []
        for command in commands:
            bulk = kept.get(command)
            if bulk is None:
                if len(kept) >= _KEPT:
                    kept.clear()
                bulk = kept[command] = pack_command(command)
            packed.append(bulk)
        return self._runner.read_many(packed)


def pipelined(client: redis.Redis) -> Reads:
    """``Reads`` through a redis-py pipeline of ``client`` (a cluster's routes each by key)."""

    def reads(commands: Sequence[Command]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            call(pipe, *command)
        return list(pipe.execute(raise_on_error=False))

    return reads


def stats_many(
    client: redis.Redis, reads: Reads, keys: Sequence[QueueKeys], now_ms: int
) -> list[QueueStats]:
    """Each queue's sizes (due delayed jobs count as ready) and totals, as of ``now_ms``."""
    commands: list[Command] = [("MULTI",)]
    for queue in keys:
        commands += (
            ("ZCARD", queue.named("ready")),
            ("LLEN", queue.named("fifo")),
            ("ZCOUNT", queue.named("delayed"), "-inf", now_ms),
            ("ZCARD", queue.named("delayed")),
            ("ZCARD", queue.named("leases")),
            ("ZCARD", queue.named("dead")),
            ("HMGET", queue.named("meta"), *_TOTALS),
            ("HLEN", queue.named("deps")),
        )
    commands.append(("EXEC",))
    answers = reads(commands)
    read = answers[-1]
    if not isinstance(read, list):  # EXECABORT: a command was refused as it was queued
        _raise_first(answers)
    rows = []
    for index, queue in enumerate(keys):
        replies = read[8 * index : 8 * index + 8]
        _refuse_broken(client, queue, replies)
        ready, listed, due, delayed, active, dead, meta, waiting = replies
        paused, completed, failed, trimmed, stale = (int(value or 0) for value in meta)
        rows.append(
            QueueStats(
                queue=queue.queue,
                ready=int(ready) + int(listed) // 2 + int(due),
                delayed=int(delayed) - int(due),
                active=int(active),
                dead=int(dead),
                paused=paused == 1,
                completed=completed,
                failed=failed,
                dead_trimmed=trimmed,
                stale_rejected=stale,
                waiting=int(waiting),
            )
        )
    return rows


def _refuse_broken(client: redis.Redis, queue: QueueKeys, replies: list[Any]) -> None:
    """Raise ``QueueBroken`` naming ``queue`` (and its wrong keys) if Redis refused one of its
    reads: inside MULTI/EXEC an error reply comes back as a value, not raised."""
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise broken(client, queue, reply)


def _raise_first(replies: list[Any]) -> list[Any]:
    """``replies``, unless one is an error reply: the first is raised (as a pipeline would)."""
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies


def _read(reads: Reads, commands: Sequence[Command]) -> list[Any]:
    return _raise_first(reads(commands)) if commands else []


def _scored(reply: list[Any]) -> list[tuple[bytes, int]]:
    """A ``ZRANGE ... WITHSCORES`` reply as (member, score) pairs: RESP2 gives a flat list of
    texts, RESP3 (and redis-py's pipeline) pairs with a float score. Scores stay below 2**53,
    exact as floats."""
    if reply and not isinstance(reply[0], list | tuple):
        reply = list(zip(reply[::2], reply[1::2], strict=True))
    return [(member, int(float(score))) for member, score in reply]


@attrs.define
class _Walk:
    """One queue's search: the band heads' records, the walk's position, the due job."""

    keys: QueueKeys
    head: str | None = None
    tail: str | None = None
    records: list[tuple[str, bytes, bytes | None]] = attrs.Factory(list)
    walked: list[str] = attrs.Factory(list)
    band: int | None = None  # the last band found while walking; None when done
    last_band: int = -1
    due: int | None = None  # run time (ms) of the earliest due delayed job


def oldest_ready_ages(
    reads: Reads, keys: Sequence[QueueKeys], clock: QueueClock, records: RecordCodec
) -> list[timedelta | None]:
    """For each queue, the age of its longest-waiting ready job (see the port's promise).

    Round trips: the ends of each ready set and the first delayed job; the records of the
    heads and tails (their priorities say whether more bands lie between); one per further
    band; the records of the heads found on the way. An error reply is raised (the first).
    """
    walks = [_Walk(k) for k in keys]
    now_ms = _ends(reads, walks, clock)
    _head_records(reads, walks)
    while any(walk.band is not None for walk in walks):
        _next_bands(reads, walks)
    _walked_records(reads, walks)
    now = from_ms(now_ms)
    return [_age(walk, now, records) for walk in walks]


def _ends(reads: Reads, walks: list[_Walk], clock: QueueClock) -> int:
    commands: list[Command] = [("TIME",)]
    for walk in walks:
        commands += (
            ("ZRANGE", walk.keys.named("ready"), 0, 0),
            ("ZRANGE", walk.keys.named("ready"), -1, -1),
            ("ZRANGE", walk.keys.named("delayed"), 0, 0, "WITHSCORES"),
            ("LINDEX", walk.keys.named("fifo"), 0),
        )
    replies = _read(reads, commands)
    now_ms = clock.from_time(replies[0])
    for index, walk in enumerate(walks):
        first, last, delayed, listed = replies[1 + 4 * index : 5 + 4 * index]
        first_delayed = _scored(delayed)
        if first_delayed and first_delayed[0][1] <= now_ms:
            walk.due = first_delayed[0][1]
        if listed is not None:
            walk.walked.append(listed.decode())  # the fifo's oldest
        if first:
            walk.head, walk.tail = first[0].decode(), last[0].decode()
    return now_ms


def _head_records(reads: Reads, walks: list[_Walk]) -> None:
    """The heads' records and errors, and the tails' records: equal priorities end a walk."""
    reading = [walk for walk in walks if walk.head is not None]
    commands: list[Command] = []
    for walk in reading:
        commands += (
            ("HMGET", walk.keys.named("jobs"), walk.head, walk.tail),  # type: ignore[arg-type]
            ("HGET", walk.keys.named("errors"), walk.head),
        )
    replies = iter(_read(reads, commands))
    for walk in reading:
        (value, tail), errors = next(replies), next(replies)
        if value is None or tail is None:
            continue  # gone since the first read: too new to be the oldest
        walk.records.append((walk.head, value, errors))  # type: ignore[arg-type]
        walk.band, walk.last_band = _band(value), _band(tail)
        if walk.band >= walk.last_band:
            walk.band = None


def _band(value: bytes) -> int:
    """The ready-score band of a stored record (``255 - priority``, as the Lua library);
    priority 0's for a record whose header is corrupt."""
    return 255 - (stored_priority(value) or 0)


def _next_bands(reads: Reads, walks: list[_Walk]) -> None:
    walking = [walk for walk in walks if walk.band is not None]
    commands: list[Command] = []
    for walk in walking:
        start = (walk.band + 1) * BAND  # type: ignore[operator]
        ready = walk.keys.named("ready")
        commands.append(("ZRANGE", ready, start, "+inf", "BYSCORE", "LIMIT", 0, 1, "WITHSCORES"))
    for walk, found in zip(walking, _read(reads, commands), strict=True):
        pairs = _scored(found)
        if not pairs:
            walk.band = None
            continue
        member, score = pairs[0]
        walk.walked.append(member.decode())
        walk.band = score // BAND
        if walk.band >= walk.last_band:
            walk.band = None


def _walked_records(reads: Reads, walks: list[_Walk]) -> None:
    commands: list[Command] = []
    for walk in walks:
        for job_id in walk.walked:
            commands += (
                ("HGET", walk.keys.named("jobs"), job_id),
                ("HGET", walk.keys.named("errors"), job_id),
            )
    replies = iter(_read(reads, commands))
    for walk in walks:
        for job_id in walk.walked:
            value, errors = next(replies), next(replies)
            if value is not None:
                walk.records.append((job_id, value, errors))


def _age(walk: _Walk, now: datetime, records: RecordCodec) -> timedelta | None:
    since = [from_ms(walk.due)] if walk.due is not None else []
    for job_id, value, errors in walk.records:
        try:
            stored = split_record(value)
        except ValueError:
            continue  # the header is corrupt: when it was enqueued is not known
        run_at = _run_at(records, walk.keys.queue, job_id, value, stored)
        since.append(_ready_since(run_at, records.errors(errors)))
    return max(now - min(since), timedelta(0)) if since else None


def _run_at(
    records: RecordCodec, queue: str, job_id: str, value: bytes, stored: Stored
) -> datetime:
    """When the stored job was first due: its enqueue, or its scheduled run time. A short
    blob (``=<name>...``, see ``blobs.py``) holds no schedule, so its job runs at once, and
    is not decoded (that was two fifths of the ages' client CPU); nor is an undecodable one."""
    enqueued = from_ms(stored.enqueued_ms)
    if stored.blob.startswith(b"="):
        return enqueued
    try:
        return records.decode_job(job_id, queue, value).run_at(enqueued)
    except UndecodableJob:
        return enqueued


def _ready_since(run_at: datetime, errors: tuple[ErrorInfo, ...]) -> datetime:
    """The latest moment the job is known to have become ready: its (scheduled) enqueue, or
    its last failure."""
    return max([run_at, *(error.at for error in errors if error.at is not None)])
