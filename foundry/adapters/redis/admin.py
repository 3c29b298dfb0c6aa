"""Inspection and administration of Redis queues: records, stats, dead letters, purges, pause.

Each operation is a round trip or a few; those that answer with a count (``requeue_dead``,
``delete``, ``purge``) carry a request id, so a re-send after a lost reply gets the first answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis

from foundry.adapters.redis.broken import refusing, refusing_any
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.cluster import is_cluster
from foundry.adapters.redis.epochs import registered_queues
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.listing import list_jobs
from foundry.adapters.redis.overview import PackedReads, oldest_ready_ages, pipelined, stats_many
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, request_id
from foundry.adapters.redis.runner import Arg, FunctionRunner, call
from foundry.domain import JobState, QueueBroken
from foundry.ports.inspection import DeadLetter, JobRecord, QueueStats

_BATCH = 500
_RECORD_HASHES = ("jobs", "state", "errors", "results", "progress")


class RedisAdmin:
    """The port's inspection and admin operations, over the queue's parts."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        records: RecordCodec,
        completed_ttl: timedelta,
    ) -> None:
        self._completed_ttl_ms = ceil_ms(completed_ttl)
        self._runner = runner
        self._client: redis.Redis = runner.client
        self._keys = keys
        self._clock = clock
        self._records = records
        # Plain reads over many queues on the runner's own connection, unless it routes by key.
        self._reads = pipelined(self._client) if runner.routes_by_key else PackedReads(runner)

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record; without ``queue``, every known queue is searched (one round trip).

        Shows what a claim would see: a due delayed job as ready, an expired record as gone.
        """
        candidates = [queue] if queue is not None else self.queues()
        try:
            return self._find(job_id, candidates)
        except QueueBroken:
            if len(candidates) == 1:
                raise
        return self._find_around_broken(job_id, candidates)

    def _find(self, job_id: str, candidates: list[str]) -> JobRecord | None:
        searched = [self._keys.queue(name) for name in candidates]
        with guard("get", job_id), refusing_any(self._client, searched):
            pipe = self._client.pipeline(transaction=False)
            for command in record_reads(self._keys, candidates, job_id):
                call(pipe, *command)
            replies = pipe.execute()
        return found_record(self._clock, self._records, candidates, job_id, replies)

    def _find_around_broken(self, job_id: str, candidates: list[str]) -> JobRecord | None:
        """Each queue alone (one round trip each), past those whose data is broken; the
        first of those is raised if the job is in no other (it may be in a broken one)."""
        broken: QueueBroken | None = None
        for name in candidates:
            try:
                found = self._find(job_id, [name])
            except QueueBroken as error:
                broken = broken or error
                continue
            if found is not None:
                return found
        if broken is not None:
            raise broken
        return None

    def stats(self, queue: str) -> QueueStats:
        """Sizes (due delayed jobs count as ready) and running totals, in one function call."""
        keys = self._keys.queue(queue)
        with guard("stats"), refusing(self._client, keys):
            reply = self._run("stats", keys, [self._clock.arg()])
        ready, delayed, active, dead, paused, completed, failed, trimmed, stale, waiting = reply
        return QueueStats(
            queue=queue,
            ready=ready,
            delayed=delayed,
            active=active,
            dead=dead,
            paused=paused == 1,
            completed=completed,
            failed=failed,
            dead_trimmed=trimmed,
            stale_rejected=stale,
            waiting=waiting,
        )

    def queues(self, *, search: bool = True) -> list[str]:
        """Every queue that has held a job or been paused (a registry set; no KEYS, no
        SCAN; on a cluster whose registry master is down, a SCAN of the others if
        ``search``: ``registered_queues``)."""
        return registered_queues(self._client, self._keys, search=search)

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """The server's time, then one MULTI/EXEC block of plain reads for every queue, no
        function call: see ``overview.py``. On Redis Cluster (a MULTI/EXEC block
        is one node's), and while Redis refuses a MULTI for want of memory, the ``stats``
        function of each queue instead (on its slot's master): it writes nothing, so Redis
        runs it then."""
        keys = [self._keys.queue(name) for name in queues]
        if not keys:
            return []
        if is_cluster(self._client):
            return [self.stats(name) for name in queues]
        with guard("stats_many"):
            try:
                now_ms = self._clock.read(self._client)
                return stats_many(self._client, self._reads, keys, now_ms)
            except redis.OutOfMemoryError:
                pass  # Redis refuses to queue a MULTI's commands while full, not the function
        return [self.stats(name) for name in queues]

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Two pipelined round trips for all ``queues`` (one more per further priority in
        use), no function call: see ``overview.py``."""
        keys = [self._keys.queue(name) for name in queues]
        with guard("oldest_ready_age"), refusing_any(self._client, keys):
            return oldest_ready_ages(self._reads, keys, self._clock, self._records)

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """Ids from the state's sorted set, then the records in one pipeline: see
        ``listing.py``."""
        keys = self._keys.queue(queue)
        with guard("jobs"), refusing(self._client, keys):
            now_ms = self._clock.read(self._client)
            window = (offset, limit, now_ms)
            return list_jobs(self._client, keys, state, window, self._records)

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Newest first. An undecodable job is shown as a placeholder ``undecodable`` job."""
        keys = self._keys.queue(queue)
        if limit < 1 or offset < 0:
            return []
        with guard("dead"), refusing(self._client, keys):
            ids = call(self._client, "ZREVRANGE", keys.named("dead"), offset, offset + limit - 1)
            pipe = self._client.pipeline(transaction=False)
            for job_id in ids:
                for key in ("jobs", "state", "errors"):
                    call(pipe, "HGET", keys.named(key), job_id)
            replies = pipe.execute()
        letters = []
        for index, raw_id in enumerate(ids):
            value, state, errors = replies[index * 3 : index * 3 + 3]
            if value is not None:
                letters.append(self._records.letter(queue, raw_id.decode(), value, state, errors))
        return letters

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Back to ready, attempts reset, errors kept; batches of 500 per function call."""
        keys = self._keys.queue(queue)
        total = 0
        with guard("requeue_dead"):
            if job_ids is None:
                return self._repeat(keys, "requeue_dead", "all")
            for start in range(0, len(job_ids), _BATCH):
                chunk = list(job_ids[start : start + _BATCH])
                args: list[Arg] = [self._clock.arg(), "ids", 0, request_id(), *chunk]
                total += int(self._run("requeue_dead", keys, args))
        return total

    def cancel(self, job_id: str, queue: str | None, reason: str) -> JobState | None:
        """A pending job cancelled (kept as long as a completed one); see ``QueuePort.cancel``.
        One function call (after a search of every queue without ``queue``)."""
        if queue is None:
            record = self.get(job_id)
            if record is None:
                return None
            queue = record.job.queue
        args: list[Arg] = [self._clock.arg(), job_id, reason, self._completed_ttl_ms]
        with guard("cancel", job_id):
            letter = self._run("cancel", self._keys.queue(queue), args)
        return self._records.state_of(letter)

    def delete(self, queue: str, job_id: str, only: str = "any") -> bool:
        """Remove a pending or dead job (not a running or completed one); ``only``
        ``"pending"`` or ``"dead"`` narrows it to those."""
        args = [self._clock.arg(), job_id, request_id(), only]
        with guard("delete", job_id):
            return bool(self._run("delete", self._keys.queue(queue), args))

    def purge(self, queue: str) -> int:
        """Remove every pending job, 500 per function call."""
        with guard("purge pending"):
            return self._repeat(self._keys.queue(queue), "purge", "pending")

    def purge_dead(self, queue: str) -> int:
        """Remove every dead letter, 500 per function call."""
        with guard("purge dead"):
            return self._repeat(self._keys.queue(queue), "purge", "dead")

    def pause(self, queue: str) -> None:
        """Claims skip the queue until ``resume``. Two commands: the registry lists the queue
        first (so one paused before its first job is shown), then the pause. A meta of the
        wrong type is that queue's ``QueueBroken``."""
        with guard("pause"):
            call(self._client, "SADD", self._keys.registry, queue)
            self._set_paused(queue, "1")

    def resume(self, queue: str) -> None:
        """Undo ``pause``."""
        with guard("resume"):
            self._set_paused(queue, "0")

    def _set_paused(self, queue: str, flag: str) -> None:
        keys = self._keys.queue(queue)
        with refusing(self._client, keys):
            call(self._client, "HSET", keys.named("meta"), "paused", flag)

    def _repeat(self, keys: QueueKeys, name: str, what: str) -> int:
        """Call a counting function with ``what`` until a call does less than a batch."""
        total = 0
        while True:
            args: list[Arg] = [self._clock.arg(), what, _BATCH, request_id()]
            count = int(self._run(name, keys, args))
            total += count
            if count < _BATCH:
                return total

    def _run(self, name: str, keys: QueueKeys, args: Sequence[Arg]) -> Any:
        with refusing(self._client, keys):
            return self._runner.call(name, keys.first, args)


def record_reads(keys: KeyLayout, candidates: Sequence[str], job_id: str) -> list[list[Arg]]:
    """The reads that find ``job_id``'s record in the ``candidates`` queues: ``TIME``, then
    each queue's record hashes and sorted-set scores (for ``found_record``)."""
    reads: list[list[Arg]] = [["TIME"]]
    for name in candidates:
        queue = keys.queue(name)
        reads += [["HGET", queue.named(key), job_id] for key in _RECORD_HASHES]
        reads += [["ZSCORE", queue.named(key), job_id] for key in ("delayed", "done")]
    return reads


def found_record(
    clock: QueueClock,
    records: RecordCodec,
    candidates: Sequence[str],
    job_id: str,
    replies: Sequence[Any],
) -> JobRecord | None:
    """The record ``record_reads``' replies hold, from the first queue that has the job."""
    now = clock.from_time(replies[0])
    width = len(_RECORD_HASHES) + 2
    for index in range(len(candidates)):
        found = list(replies[1 + index * width : 1 + (index + 1) * width])
        if found[0] is not None:
            return records.record(candidates[index], job_id, found, now)
    return None
