"""The Redis queue's enqueue: jobs encoded first (bad input writes nothing), one function call
per queue and 1,000 jobs, the calls of a batch in one write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from foundry.adapters.redis.broken import refusing
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import job_args
from foundry.adapters.redis.runner import Arg, FunctionRunner
from foundry.domain import Job
from foundry.ports.queue_types import Duplicate, Enqueued, EnqueueOutcome

_BATCH = 1000


class Enqueuer:
    """``enqueue`` and ``enqueue_many`` over the queue's parts; registers each queue used."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        records: RecordCodec,
        epochs: Epochs,
    ) -> None:
        self._runner = runner
        self._keys = keys
        self._clock = clock
        self._records = records
        self._epochs = epochs

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store one job: one round trip (two the first time this process uses the queue)."""
        keys = self._keys.queue(job.queue)
        args: list[Arg] = [self._clock.arg(), self._epochs.candidate]
        args += job_args(job, self._records.encode_job(job))
        with guard("enqueue", job.id), refusing(self._runner.client, keys):
            self._epochs.register(job.queue)
            reply = self._runner.call("enqueue", keys.all, args)
        self._epochs.see(job.queue, reply[0])
        return _outcome(job.id, reply[1])

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Every job, in order: one call per queue and 1,000 jobs, all in one write."""
        calls, order = self._calls(jobs)
        if not calls:
            return []
        with guard("enqueue_many", jobs[0].id):
            for keys, _ in calls:
                self._epochs.register(keys.queue)
            replies = self._runner.call_many([("enqueue", keys.all, args) for keys, args in calls])
        for (keys, _), reply in zip(calls, replies, strict=True):
            self._epochs.see(keys.queue, reply[0])
        flat = [item for reply in replies for item in reply[1:]]
        return [_outcome(job.id, flat[order[index]]) for index, job in enumerate(jobs)]

    def _calls(self, jobs: Sequence[Job]) -> tuple[list[tuple[QueueKeys, list[Arg]]], list[int]]:
        """Encode everything first (bad input fails before any write), grouped by queue."""
        by_queue: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(index)
        calls: list[tuple[QueueKeys, list[Arg]]] = []
        order: list[int] = [0] * len(jobs)
        position = 0
        now = self._clock.arg()
        for queue, indices in by_queue.items():
            keys = self._keys.queue(queue)
            for start in range(0, len(indices), _BATCH):
                args: list[Arg] = [now, self._epochs.candidate]
                for index in indices[start : start + _BATCH]:
                    job = jobs[index]
                    args += job_args(job, self._records.encode_job(job))
                    order[index] = position
                    position += 1
                calls.append((keys, args))
        return calls, order


def _outcome(job_id: str, reply: Any) -> EnqueueOutcome:
    if reply == 0:
        return Enqueued(job_id)
    return Duplicate(job_id, reply.decode())
