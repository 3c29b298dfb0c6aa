"""RedisQueue: the reliable Redis adapter of ``QueuePort`` (and ``WorkerRegistry``).

It owns no state of its own: it builds its parts, each in its own module with the state it
touches, and hands each port operation to the part that does it:

* ``runner.FunctionRunner``: the Lua library, FCALL on this thread's own connection;
* ``keys.KeyLayout``, ``clock.QueueClock``, ``record_codec.RecordCodec``,
  ``retention.Retention``, ``epochs.Epochs``: keys, time, stored forms, dead-letter retention,
  the queue registry and lost-data watch;
* ``enqueuing.Enqueuer``, ``claiming.Claimer``, ``writes.LeaseWrites``, ``admin.RedisAdmin``,
  ``workers.RedisWorkers``, ``schedules.RedisSchedules``: the operations.

Costs: every operation is one function call (one round trip); ``enqueue_many``, ``renew`` and
``complete_many`` batch per queue and send the calls of several queues in one write;
``complete_and_claim`` sends a batch of completions in front of the claim. ``claim`` over
several queues makes one call per queue visited. See docs/architecture.md for the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import redis

from foundry.adapters.codec import Codec
from foundry.adapters.redis.byte_replies import bytes_replies
from foundry.adapters.redis.claiming import Claimer
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.cluster_runner import function_runner
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.enqueuing import Enqueuer
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.health import RedisReport, check
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.retention import Retention
from foundry.adapters.redis.schedules import RedisSchedules
from foundry.adapters.redis.waiting import Waiter
from foundry.adapters.redis.workers import RedisWorkers
from foundry.adapters.redis.writes import LeaseWrites
from foundry.domain import (
    MAX_PAYLOAD_BYTES,
    ConfigurationError,
    Decision,
    ErrorInfo,
    Job,
    JobState,
    QueueBroken,
)
from foundry.domain.given import (
    given_ids,
    given_name,
    given_optional_queue,
    given_queue,
    given_queues,
    given_state,
)
from foundry.domain.job import given_id
from foundry.ports.clock import Clock
from foundry.ports.queue_types import (
    ClaimRequest,
    DeadLetterRetention,
    EnqueueOutcome,
    Lease,
    WorkerInfo,
)

if TYPE_CHECKING:
    from foundry.adapters.redis.admin import RedisAdmin
    from foundry.adapters.redis.batches import RedisBatches
    from foundry.domain.batch import Batch
    from foundry.ports.batch_types import BatchRecord
    from foundry.ports.inspection import DeadLetter, JobRecord, QueueStats
    from foundry.ports.schedule_types import Fired, Firing, Poll, ScheduleEntry, ScheduleListing


class RedisQueue:
    """Jobs in Redis: one Lua function per transition, each safe to re-send.

    ``clock=None`` (production) lets every function read the Redis server's ``TIME``; tests
    pass a ``ManualClock``. ``block_limit`` bounds a claim's blocking wait for work: give
    ``LeaseTiming.block_limit`` when the client's socket timeout is that timing's
    ``reply_timeout`` (``None``: no bound beyond the wait itself, a second at most per BLPOP).
    ``durability`` (``REDIS_WAIT_REPLICAS``) makes enqueues, completions and failures wait
    for replicas before they return (see ``durability.py``).
    Beyond the port: ``check()``, the startup self-check.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "foundry",
        clock: Clock | None = None,
        codec: Codec | None = None,
        retention: DeadLetterRetention | None = None,
        completed_ttl: timedelta = timedelta(hours=1),
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        block_limit: timedelta | None = None,
        durability: Durability | None = None,
    ) -> None:
        client = bytes_replies(client, "the queue")
        if not 0 < max_payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigurationError(
                f"max_payload_bytes must be 1-{MAX_PAYLOAD_BYTES}, got {max_payload_bytes}"
            )
        if completed_ttl <= timedelta(0):
            raise ConfigurationError(f"completed_ttl must be positive, got {completed_ttl}")
        codec = codec or Codec(max_payload_bytes)
        runner = function_runner(client, durability)
        keys = KeyLayout(prefix)
        now = QueueClock(clock)
        records = RecordCodec(codec)
        kept = Retention(retention or DeadLetterRetention())
        epochs = Epochs(client, keys, now)
        self._runner = runner
        self._keys = keys
        self._now = now
        self._records = records
        self._epochs = epochs
        self._completed_ttl = completed_ttl
        self._enqueuer = Enqueuer(runner, keys, now, records, epochs)
        self._claimer = Claimer(
            runner,
            keys,
            now,
            records,
            epochs=epochs,
            retention=kept,
            block_limit_s=None if block_limit is None else block_limit.total_seconds(),
        )
        self._writes = LeaseWrites(
            runner, keys, now, records, retention=kept, completed_ttl=completed_ttl
        )
        block_s = None if block_limit is None else block_limit.total_seconds()
        self._waiter = Waiter(runner, keys, now, self.get, block_s)
        self._workers = RedisWorkers(client, keys, now, codec)
        self._schedules = RedisSchedules(client, runner, keys, now, records=records, epochs=epochs)

    # Inspection and batches are built at first use: a worker, and a dispatcher that sends
    # no batch, never import their modules (nor the record and batch classes they hold).

    @cached_property
    def _admin(self) -> RedisAdmin:
        from foundry.adapters.redis.admin import RedisAdmin  # noqa: PLC0415

        return RedisAdmin(self._runner, self._keys, self._now, self._records, self._completed_ttl)

    @cached_property
    def _batches(self) -> RedisBatches:
        from foundry.adapters.redis.batches import RedisBatches  # noqa: PLC0415

        return RedisBatches(
            self._runner,
            self._keys,
            clock=self._now,
            records=self._records,
            epochs=self._epochs,
            completed_ttl=self._completed_ttl,
            queues=self.queues,
        )

    # -- jobs in, jobs out ----------------------------------------------------------------------

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """One round trip (two the first time this process uses the queue)."""
        return self._enqueuer.enqueue(job)

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """One function call per queue and 1,000 jobs, all in one write."""
        return self._enqueuer.enqueue_many(jobs)

    @property
    def claims_from_forks(self) -> bool:
        """Yes on the server's clock (redis-py makes a forked process's connections anew); a
        test's clock is this process's alone."""
        return self._now.served

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Blocks on the queues' wake lists while nothing is ready; undecodable jobs met on the
        way are dead-lettered, so a claim may return fewer jobs than were ready. The starts
        ``request.started`` reports ride in its first round trip: its first queue's in that
        queue's claim, the others' in front of it (one a broken queue refuses is not this
        claim's error: the next renew of its lease records that start too)."""
        started, starts = self._writes.start_calls(request.started, request.queues[0])
        return self._claimer.claim(request, starts, started)[1]

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        """The completions ride in the claim's first round trip, in front of it (Redis runs
        them in order, so they are applied before the claim), one call per queue, each
        answered on its own; the starts ride as in ``claim``."""
        groups, calls = self._writes.complete_calls(leases, results)
        started, starts = self._writes.start_calls(request.started, request.queues[0])
        replies, claimed = self._claimer.claim(request, [*calls, *starts], started)
        return self._writes.outcomes(leases, groups, replies[: len(calls)]), claimed

    # -- batches (BatchPort) --------------------------------------------------------------------

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """One function call (see ``BatchPort.enqueue_batches``)."""
        self._batches.enqueue_batches(items)

    def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """One round trip (plus the server's time), also when every queue is searched."""
        return self._batches.batch(given_id(batch_id, "batch"), given_optional_queue(queue))

    def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """The record read, one function call, the record read again."""
        return self._batches.cancel_batch(
            given_id(batch_id, "batch"), given_optional_queue(queue), reason
        )

    def batches(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[BatchRecord]:
        """Newest first, a few round trips, no function call."""
        return self._batches.batches(given_queue(queue), offset, limit)

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """One round trip (see ``BatchPort.members``)."""
        return self._batches.members(given_id(batch_id, "batch"), given_queue(queue))

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """One round trip (see ``BatchPort.job_records``)."""
        return self._batches.job_records(given_ids(job_ids) or [], given_queue(queue))

    # -- leases ---------------------------------------------------------------------------------

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """One round trip for every lease."""
        return self._writes.renew(leases, duration)

    def complete(self, lease: Lease, result: Any = None) -> None:
        """One round trip; raises ``StaleLease`` unless this lease holds the job."""
        self._writes.complete(lease, result)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        """One round trip for the batch; a queue's refusal in its jobs' places."""
        return self._writes.complete_many(leases, results)

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """One round trip; the error is kept with this attempt's number."""
        return self._writes.fail(lease, error, decision)

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """One round trip."""
        self._writes.release(lease, delay)

    def reap(self) -> int:
        """Every known queue, in one write per batch of 1,000 expired leases (the registry
        read alone: no SCAN for queues while its cluster master is down)."""
        return self._writes.reap(self._admin.queues(search=False))

    # -- inspection and admin -------------------------------------------------------------------

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """One round trip, also when every queue is searched."""
        return self._admin.get(given_id(job_id), given_optional_queue(queue))

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """Blocks on the job's notification list (``waiting.py``): two round trips once it
        ended, a function call per second of waiting."""
        return self._waiter.wait(given_id(job_id), timeout, given_optional_queue(queue))

    def stats(self, queue: str) -> QueueStats:
        """One function call."""
        return self._admin.stats(given_queue(queue))

    def queues(self) -> list[str]:
        """A registry set: no KEYS, no SCAN."""
        return self._admin.queues()

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """One write for all ``queues`` (after the server's time), no function call."""
        return self._admin.stats_many(given_queues(queues))

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """A few pipelined reads for all ``queues``, no function call."""
        return self._admin.oldest_ready_age(given_queues(queues))

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """A few round trips, no function call."""
        return self._admin.jobs(given_queue(queue), given_state(state), offset=offset, limit=limit)

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Two round trips."""
        return self._admin.dead(given_queue(queue), offset=offset, limit=limit)

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """500 per function call."""
        return self._admin.requeue_dead(given_queue(queue), given_ids(job_ids))

    def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """One function call (and a search of every queue without ``queue``)."""
        return self._admin.cancel(given_id(job_id), given_optional_queue(queue), reason)

    def delete(self, queue: str, job_id: str) -> bool:
        """One function call."""
        return self._admin.delete(given_queue(queue), given_id(job_id))

    def delete_pending(self, queue: str, job_id: str) -> bool:
        """One function call."""
        return self._admin.delete(given_queue(queue), given_id(job_id), "pending")

    def delete_dead(self, queue: str, job_id: str) -> bool:
        """One function call."""
        return self._admin.delete(given_queue(queue), given_id(job_id), "dead")

    def purge(self, queue: str) -> int:
        """500 per function call."""
        return self._admin.purge(given_queue(queue))

    def purge_dead(self, queue: str) -> int:
        """500 per function call."""
        return self._admin.purge_dead(given_queue(queue))

    def pause(self, queue: str) -> None:
        """One command."""
        self._admin.pause(given_queue(queue))

    def resume(self, queue: str) -> None:
        """One command."""
        self._admin.resume(given_queue(queue))

    # -- workers and health ---------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """One round trip (and a ``TIME`` without a test clock)."""
        self._workers.heartbeat(info, ttl)

    def workers(self) -> list[WorkerInfo]:
        """A few round trips."""
        return self._workers.workers()

    def forget_worker(self, worker_id: str) -> None:
        """One round trip."""
        self._workers.forget_worker(worker_id)

    def check(self) -> RedisReport:
        """The startup self-check: Redis >= 7 (else ``ConfigurationError``), eviction policy and
        persistence reported, warnings logged; the Lua library loaded."""
        return check(self._runner)

    # -- periodic schedules (SchedulePort) ------------------------------------------------------

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """See ``SchedulePort.sync_schedules``."""
        self._schedules.sync_schedules(entries, redefine=redefine)

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """See ``SchedulePort.poll``."""
        return self._schedules.poll(queues, limit, ahead)

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """See ``SchedulePort.fire``."""
        return self._schedules.fire(firings)

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """See ``SchedulePort.orphan``."""
        self._schedules.orphan(queue, names)

    def schedule_states(self) -> ScheduleListing:
        """See ``SchedulePort.schedule_states``."""
        return self._schedules.schedule_states()

    def pause_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.pause_schedule``."""
        return self._schedules.pause_schedule(given_queue(queue), given_name(name))

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """See ``SchedulePort.resume_schedule``."""
        return self._schedules.resume_schedule(given_queue(queue), given_name(name), next_at)

    def forget_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.forget_schedule``."""
        return self._schedules.forget_schedule(given_queue(queue), given_name(name))
