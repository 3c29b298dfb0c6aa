"""Inspection and administration of Redis queues: records, stats, dead letters, purges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from foundry.adapters.redis.core import RedisCore, request_id
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import QueueKeys, registry_key
from foundry.adapters.redis.records import (
    decode_errors,
    from_ms,
    parse_state,
    split_record,
    to_ms,
)
from foundry.adapters.redis.runner import call
from foundry.adapters.redis.waiting import oldest_ready_ages
from foundry.domain import Job, JobState, UndecodableJob
from foundry.ports.queue_types import DeadLetter, JobRecord, QueueStats

_STATES = {
    "R": JobState.READY,
    "D": JobState.DELAYED,
    "A": JobState.ACTIVE,
    "C": JobState.COMPLETED,
    "X": JobState.DEAD,
}
_BATCH = 500
_RECORD_HASHES = ("jobs", "state", "errors", "results")


class RedisAdmin(RedisCore):
    """The port's inspection and admin operations (each a round trip or a few)."""

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record; without ``queue``, every known queue is searched (one round trip).

        Shows what a claim would see: a due delayed job as ready, an expired record as gone.
        """
        candidates = [queue] if queue is not None else self.queues()
        with guard("get", job_id):
            pipe = self._client.pipeline(transaction=False)
            call(pipe, "TIME")
            for name in candidates:
                keys = self._queue_keys(name)
                for key in _RECORD_HASHES:
                    call(pipe, "HGET", keys.named(key), job_id)
                for key in ("delayed", "done"):
                    call(pipe, "ZSCORE", keys.named(key), job_id)
            replies = pipe.execute()
        now = self._now_ms(replies[0])
        width = len(_RECORD_HASHES) + 2
        for index in range(len(candidates)):
            found = replies[1 + index * width : 1 + (index + 1) * width]
            if found[0] is not None:
                return self._record(candidates[index], job_id, found, now)
        return None

    def _now_ms(self, server_time: list[bytes]) -> int:
        if self._clock is not None:
            return to_ms(self._clock.now())
        return int(server_time[0]) * 1000 + int(server_time[1]) // 1000

    def _record(self, queue: str, job_id: str, found: list[Any], now: int) -> JobRecord | None:
        value, state_value, errors, result, run_at, expires = found
        if expires is not None and float(expires) <= now:
            return None
        state = parse_state(state_value)
        status = _STATES[state.letter]
        if status is JobState.DELAYED and run_at is not None and float(run_at) <= now:
            status = JobState.READY
        return JobRecord(
            job=self._blobs.decode(job_id, queue, value),
            state=status,
            attempts=state.attempts,
            enqueued_at=from_ms(split_record(value).enqueued_ms),
            run_at=from_ms(int(float(run_at))) if run_at is not None else None,
            lease_deadline=from_ms(state.time_ms) if status is JobState.ACTIVE else None,
            errors=decode_errors(self._codec, errors),
            result=orjson.loads(result) if result else None,
            reason=(state.reason or None) if status is JobState.DEAD else None,
            finished_at=from_ms(state.time_ms) if status.is_final else None,
        )

    def stats(self, queue: str) -> QueueStats:
        """Sizes (due delayed jobs count as ready) and running totals, in one script call."""
        with guard("stats"):
            reply = self._run("stats", self._queue_keys(queue), [self._now()])
        ready, delayed, active, dead, paused, completed, failed, trimmed, stale = reply
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
        )

    def queues(self) -> list[str]:
        """Every queue that has held a job (a registry set; no KEYS, no SCAN)."""
        with guard("queues"):
            names = call(self._client, "SMEMBERS", registry_key(self._prefix))
        return sorted(name.decode() for name in names)

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Two pipelined round trips for all ``queues`` (one more per further priority in
        use), no script: see ``waiting.py``."""
        keys = [self._queue_keys(name) for name in queues]
        now_ms = to_ms(self._clock.now()) if self._clock is not None else None
        with guard("oldest_ready_age"):
            return oldest_ready_ages(self._client, keys, now_ms, self._blobs, self._codec)

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Newest first. An undecodable job is shown as a placeholder ``undecodable`` job."""
        keys = self._queue_keys(queue)
        if limit < 1 or offset < 0:
            return []
        with guard("dead"):
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
                letters.append(self._letter(queue, raw_id.decode(), value, state, errors))
        return letters

    def _letter(
        self, queue: str, job_id: str, value: bytes, state_value: bytes | None, errors: Any
    ) -> DeadLetter:
        state = parse_state(state_value)
        try:
            job = self._blobs.decode(job_id, queue, value)
        except UndecodableJob as error:
            job = Job("undecodable", id=job_id, queue=queue, metadata={"undecodable": error.reason})
        return DeadLetter(
            job=job,
            reason=state.reason,
            attempts=state.attempts,
            died_at=from_ms(state.time_ms),
            errors=decode_errors(self._codec, errors),
        )

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Back to ready, attempts reset, errors kept; batches of 500 per script call."""
        keys = self._queue_keys(queue)
        total = 0
        with guard("requeue_dead"):
            if job_ids is None:
                while True:
                    count = int(
                        self._run("requeue_dead", keys, [self._now(), "all", _BATCH, request_id()])
                    )
                    total += count
                    if count < _BATCH:
                        return total
            for start in range(0, len(job_ids), _BATCH):
                chunk = list(job_ids[start : start + _BATCH])
                total += int(
                    self._run("requeue_dead", keys, [self._now(), "ids", 0, request_id(), *chunk])
                )
        return total

    def delete(self, queue: str, job_id: str) -> bool:
        """Remove a pending or dead job (not a running or completed one)."""
        with guard("delete", job_id):
            return bool(
                self._run("delete", self._queue_keys(queue), [self._now(), job_id, request_id()])
            )

    def purge(self, queue: str) -> int:
        """Remove every pending job, 500 per script call."""
        return self._purge(self._queue_keys(queue), "pending")

    def purge_dead(self, queue: str) -> int:
        """Remove every dead letter, 500 per script call."""
        return self._purge(self._queue_keys(queue), "dead")

    def _purge(self, keys: QueueKeys, what: str) -> int:
        total = 0
        with guard(f"purge {what}"):
            while True:
                count = int(self._run("purge", keys, [self._now(), what, _BATCH, request_id()]))
                total += count
                if count < _BATCH:
                    return total

    def pause(self, queue: str) -> None:
        """Claims skip the queue until ``resume``."""
        with guard("pause"):
            call(self._client, "HSET", self._queue_keys(queue).named("meta"), "paused", "1")

    def resume(self, queue: str) -> None:
        """Undo ``pause``."""
        with guard("resume"):
            call(self._client, "HSET", self._queue_keys(queue).named("meta"), "paused", "0")
