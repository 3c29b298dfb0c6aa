"""The Redis queue's enqueue: jobs encoded first (bad input writes nothing), one function call
per queue and 1,000 jobs, the calls of a batch in one write.

``EnqueuePlan`` builds the calls and reads their replies without I/O, so the sync ``Enqueuer``
and the asyncio queue send the same calls and keep the same promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from foundry.adapters.redis.broken import broken
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.epochs import Epochs, EpochWatch
from foundry.adapters.redis.errors import guard, translated
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import job_args
from foundry.adapters.redis.runner import Arg, FunctionRunner
from foundry.domain import AfterFailure, InvalidJob, Job, RunNow
from foundry.ports.queue_types import Duplicate, Enqueued, EnqueueOutcome

_BATCH = 1000

#: One ``enqueue`` function call: the queue's keys and the arguments.
EnqueueCall = tuple[QueueKeys, list[Arg]]


class EnqueuePlan:
    """The ``enqueue`` calls for jobs, and the outcomes their replies say."""

    def __init__(
        self, keys: KeyLayout, clock: QueueClock, records: RecordCodec, epochs: EpochWatch
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._records = records
        self._epochs = epochs

    def one(self, job: Job) -> EnqueueCall:
        """The call that stores ``job`` (raises the codec's ``InvalidJob`` before any write):
        a plain job (ready now, priority 0, no unique key, no dependencies) in the function's
        short form, five arguments where the general form takes ten."""
        blob = self._records.encode_job(job)
        args: list[Arg] = [self._clock.arg(), self._epochs.candidate]
        if _plain(job):
            args += [job.id, blob, str(job.max_attempts)]
        else:
            args += [*job_args(job, blob), dependencies(job)]
        return self._keys.queue(job.queue), args

    def outcome(self, job: Job, reply: Any) -> EnqueueOutcome:
        """What one call's reply says about ``job``; notes the queue's epoch. Raises
        ``InvalidJob`` for a dependency the queue does not hold (nothing was written)."""
        if type(reply) is bytes:  # the short form's job, stored: the epoch alone
            self._epochs.see(job.queue, reply)
            return Enqueued(job.id)
        refuse_unknown_dependency(job.queue, reply)
        self._epochs.see(job.queue, reply[0])
        return _outcome(job.id, reply[1])

    def many(self, jobs: Sequence[Job]) -> tuple[list[EnqueueCall], list[int]]:
        """Every job's call, grouped by queue and 1,000 jobs, and each job's reply position.

        Everything is encoded first: bad input fails before any write.
        """
        by_queue: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(index)
        calls: list[EnqueueCall] = []
        order: list[int] = [0] * len(jobs)
        position = 0
        now = self._clock.arg()
        for queue, indices in by_queue.items():
            keys = self._keys.queue(queue)
            for start in range(0, len(indices), _BATCH):
                args: list[Arg] = [now, self._epochs.candidate]
                for index in indices[start : start + _BATCH]:
                    job = jobs[index]
                    args += [*job_args(job, self._records.encode_job(job)), dependencies(job)]
                    order[index] = position
                    position += 1
                calls.append((keys, args))
        return calls, order

    def outcomes(
        self, jobs: Sequence[Job], calls: list[EnqueueCall], replies: list[Any], order: list[int]
    ) -> list[EnqueueOutcome]:
        """Each job's outcome, in the jobs' order; notes each queue's epoch. Raises
        ``InvalidJob`` for a dependency a queue does not hold (that queue's call wrote
        nothing)."""
        for (keys, _), reply in zip(calls, replies, strict=True):
            refuse_unknown_dependency(keys.queue, reply)
        for (keys, _), reply in zip(calls, replies, strict=True):
            self._epochs.see(keys.queue, reply[0])
        flat = [item for reply in replies for item in reply[1:]]
        return [_outcome(job.id, flat[order[index]]) for index, job in enumerate(jobs)]


class ShortCalls:
    """The short form's function call of a plain job, packed here: the head (``FCALL``, the
    function, the queue's jobs key, the server's clock, the epoch candidate) made once per
    queue, then the job's id, blob and max attempts, in one formatting (the runner's general
    packing of five arguments was an eighth of a dispatch's client work). Only for the
    server's clock, the test clock's ``now`` changes per call."""

    def __init__(self, function: str, keys: KeyLayout, candidate: str) -> None:
        self._function = function
        self._keys = keys
        self._candidate = candidate
        self._heads: dict[str, bytes] = {}
        self._attempts: dict[int, bytes] = {}

    def pack(self, job: Job, blob: bytes) -> bytes:
        """The packed call that stores plain ``job`` (its blob encoded already)."""
        head = self._heads.get(job.queue)
        if head is None:
            head = self._head(job.queue)
        attempts = self._attempts.get(job.max_attempts)
        if attempts is None:
            attempts = self._attempts[job.max_attempts] = _bulk(str(job.max_attempts))
        job_id = job.id.encode()
        return b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n%b" % (
            head,
            len(job_id),
            job_id,
            len(blob),
            blob,
            attempts,
        )

    def _head(self, queue: str) -> bytes:
        parts = ["FCALL", self._function, "1", *self._keys.queue(queue).first, "", self._candidate]
        head = self._heads[queue] = b"*9\r\n" + b"".join(map(_bulk, parts))
        return head


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


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
        self._epochs = epochs
        self._encode = records.encode_job
        self._plan = EnqueuePlan(keys, clock, records, epochs)
        # The short form packed here serves the server's clock ("" as now), on a runner that
        # takes packed calls (one connection, no WAIT).
        self._short: ShortCalls | None = None
        if clock.arg() == "" and runner.takes_packed:
            function = runner.library.function["enqueue"]
            self._short = ShortCalls(function, keys, epochs.candidate)

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store one job: one round trip (two the first time this process uses the queue)."""
        short = self._short
        if short is not None and _plain(job):
            return self._enqueue_short(job, short.pack(job, self._encode(job)))
        keys, args = self._plan.one(job)
        # guard() and refusing() written out: two generator context managers were a tenth of
        # the client's work per dispatch.
        try:
            self._epochs.register(job.queue)
            reply = self._runner.call("enqueue", keys.first, args)
        except redis.ResponseError as error:
            raise broken(self._runner.client, keys, error) from error
        except redis.RedisError as error:
            raise translated("enqueue", error, job.id) from error
        return self._plan.outcome(job, reply)

    def _enqueue_short(self, job: Job, packed: bytes) -> EnqueueOutcome:
        """``enqueue`` of a plain job, packed already; its reply read in place (the epoch
        alone when the job was stored, ``EnqueuePlan.outcome`` otherwise)."""
        try:
            self._epochs.register(job.queue)
            reply = self._runner.call_packed(packed)
        except redis.ResponseError as error:
            raise broken(self._runner.client, self._keys.queue(job.queue), error) from error
        except redis.RedisError as error:
            raise translated("enqueue", error, job.id) from error
        if type(reply) is not bytes:
            return self._plan.outcome(job, reply)
        self._epochs.see(job.queue, reply)
        # Made without the generated __init__ (Enqueued has no field to check): a third of
        # its cost, and one is made per dispatch.
        outcome = _new(Enqueued)
        _set(outcome, "job_id", job.id)
        return outcome

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Every job, in order: one call per queue and 1,000 jobs, all in one write."""
        calls, order = self._plan.many(jobs)
        if not calls:
            return []
        with guard("enqueue_many", jobs[0].id):
            for keys, _ in calls:
                self._epochs.register(keys.queue)
            replies = self._runner.call_many(
                [("enqueue", keys.first, args) for keys, args in calls], errors_in_place=True
            )
        for (keys, _), reply in zip(calls, replies, strict=True):
            # A refusal is its queue's own: the other queues' jobs are stored (re-sending the
            # whole batch is accepted, Q8).
            if isinstance(reply, redis.ResponseError):
                raise broken(self._runner.client, keys, reply) from reply
        return self._plan.outcomes(jobs, calls, replies, order)


_new = object.__new__
_set = object.__setattr__

_RULES = {AfterFailure.DEAD: "D", AfterFailure.CANCEL: "C", AfterFailure.RUN: "R"}


def _plain(job: Job) -> bool:
    """Ready now at priority 0, without a unique key or dependencies: the short form."""
    return (
        job.priority == 0 and type(job.schedule) is RunNow and job.unique is None and not job.after
    )


def dependencies(job: Job) -> str:
    """The enqueue function's dependency argument: "" or "<D|C|R> <id> <id>..."."""
    if not job.after:
        return ""
    return _RULES[job.after_failure] + " " + " ".join(job.after)


def refuse_unknown_dependency(queue: str, reply: Any) -> None:
    """The function refused a batch (before any write) for a dependency it does not hold, or
    for a job id that is a kept batch's or a pending callback's."""
    if reply and reply[0] == b"!c":
        raise pending_callback(queue, reply[1].decode(), reply[2].decode())
    if reply and reply[0] == b"!j":
        raise InvalidJob(
            "id",
            f"{reply[2].decode()!r} is a batch's id in queue {queue!r} (batch and job ids "
            "share one space): pick another job id",
        )
    if reply and reply[0] == b"!":
        raise InvalidJob(
            "after",
            f"job {reply[2].decode()!r} is not in queue {queue!r}; a job can wait only for "
            "jobs of its own queue enqueued before it (or earlier in the same batch)",
        )


def pending_callback(queue: str, used: str, held: str) -> InvalidJob:
    """The refusal of ``used``, the id of a callback not enqueued yet (``held``: "<which>
    <batch id>", the ``cbof`` entry)."""
    which, batch_id = held.split(" ", 1)
    return InvalidJob(
        "id",
        f"{used!r} is the {which} callback of batch {batch_id!r} in queue {queue!r}, not "
        "enqueued yet (batch, job and callback ids share one space): pick another id",
    )


def _outcome(job_id: str, reply: Any) -> EnqueueOutcome:
    if reply == 0:
        return Enqueued(job_id)
    return Duplicate(job_id, reply.decode())
