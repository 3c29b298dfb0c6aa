"""RedisQueue: the reliable Redis adapter of ``QueuePort`` (and ``WorkerRegistry``).

Costs: every operation is one script call (one round trip); ``enqueue_many``, ``renew`` and
``complete_many`` batch per queue and pipeline across queues; ``complete_and_claim`` sends a
batch of completions in front of the claim. ``claim`` over several queues makes one call per
queue visited. See docs/architecture.md for the storage layout.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import attrs
from loguru import logger

from foundry.adapters.redis.admin import RedisAdmin
from foundry.adapters.redis.core import request_id
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.records import ceil_ms, from_ms, job_args
from foundry.adapters.redis.runner import Arg
from foundry.adapters.redis.workers import RedisWorkers
from foundry.domain import (
    Dead,
    Decision,
    ErrorInfo,
    Job,
    JobState,
    Retry,
    StaleLease,
    UndecodableJob,
    UniqueUntil,
)
from foundry.ports.queue_types import ClaimRequest, Duplicate, Enqueued, EnqueueOutcome, Lease

_BATCH = 1000
_WAKE_POLL = 1.0

_Call = tuple[str, Sequence[str], Sequence[Arg]]


class RedisQueue(RedisAdmin, RedisWorkers):
    """Jobs in Redis: Lua scripts per transition, idempotent under re-send.

    ``clock=None`` (production) lets every script read the Redis server's ``TIME``; tests
    pass a ``ManualClock``. Extra beyond the port: ``complete_many`` (one round trip for a
    batch), ``complete_and_claim`` (a batch and the next claim in one round trip) and
    ``check`` (the startup self-check).
    """

    # -- enqueue ------------------------------------------------------------------------------

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store one job: one round trip (two the first time this process uses the queue)."""
        keys = self._queue_keys(job.queue)
        args = [self._now(), self._epoch_candidate, *job_args(job, self._blobs.encode(job))]
        with guard("enqueue", job.id):
            if job.queue not in self._registered:
                self._register(job.queue)
            reply = self._run("enqueue", keys, args)
        self._see_epoch(job.queue, reply[0])
        return _outcome(job.id, reply[1])

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Every job, in order: one script call per queue and 1,000 jobs, all pipelined."""
        calls, order = self._enqueue_calls(jobs)
        if not calls:
            return []
        with guard("enqueue_many", jobs[0].id):
            for keys, _ in calls:
                if keys.queue not in self._registered:
                    self._register(keys.queue)
            replies = self._runner.call_many([("enqueue", keys.all, args) for keys, args in calls])
        outcomes: list[EnqueueOutcome] = []
        for (keys, _), reply in zip(calls, replies, strict=True):
            self._see_epoch(keys.queue, reply[0])
        flat = [item for reply in replies for item in reply[1:]]
        for index, job in enumerate(jobs):
            outcomes.append(_outcome(job.id, flat[order[index]]))
        return outcomes

    def _enqueue_calls(
        self, jobs: Sequence[Job]
    ) -> tuple[list[tuple[QueueKeys, list[Arg]]], list[int]]:
        """Encode everything first (bad input fails before any write), grouped by queue."""
        by_queue: dict[str, list[int]] = {}
        for index, job in enumerate(jobs):
            by_queue.setdefault(job.queue, []).append(index)
        calls: list[tuple[QueueKeys, list[Arg]]] = []
        order: list[int] = [0] * len(jobs)
        position = 0
        now = self._now()
        for queue, indices in by_queue.items():
            keys = self._queue_keys(queue)
            for start in range(0, len(indices), _BATCH):
                args: list[Arg] = [now, self._epoch_candidate]
                for index in indices[start : start + _BATCH]:
                    job = jobs[index]
                    args += job_args(job, self._blobs.encode(job))
                    order[index] = position
                    position += 1
                calls.append((keys, args))
        return calls, order

    # -- claim --------------------------------------------------------------------------------

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Lease up to ``limit`` jobs; blocks on the queues' wake lists while nothing is ready.

        Undecodable jobs met on the way go to the dead letters (never raised), so a claim may
        return fewer jobs than were ready.
        """
        return self._claim(request, [])[1]

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool], list[Lease]]:
        """``complete_many`` then ``claim``, the completions sent in the claim's first round
        trip (Redis runs them in order, so they are applied before the claim)."""
        groups, calls = self._complete_calls(leases, results)
        replies, claimed = self._claim(request, calls)
        return self._applied(leases, groups, replies), claimed

    def _claim(self, request: ClaimRequest, before: list[_Call]) -> tuple[list[Any], list[Lease]]:
        """The claim loop; ``before`` rides in front of its first script call (replies first).

        While nothing is ready it blocks on the queues' wake lists, with the next round's
        first claim pipelined behind the BLPOP: Redis runs that claim the moment a job
        arrives, saving a round trip on the way from enqueue to start.
        """
        all_keys = [self._queue_keys(queue) for queue in request.queues]
        token = request.claim_token or secrets.token_urlsafe(12)
        give_up = time.monotonic() + request.wait.total_seconds()
        replies: list[Any] = []
        block = 0.0
        while True:
            # A round behind a BLPOP may follow an early wake-up: it never ends the wait.
            last = not block and give_up - time.monotonic() <= 0
            with guard("claim"):
                leases, resent, next_due, prior = self._claim_round(
                    all_keys, request, token, before, last=last, block=block
                )
            if before:
                replies, before = prior, []
            if leases or resent or last:
                return replies, leases
            block = self._block_for(give_up - time.monotonic(), next_due)

    def _claim_round(
        self,
        all_keys: list[QueueKeys],
        request: ClaimRequest,
        token: str,
        before: list[_Call],
        *,
        last: bool,
        block: float = 0.0,
    ) -> tuple[list[Lease], bool, int | None, list[Any]]:
        """One pass over the queues, after blocking ``block`` seconds on their wake lists.

        Only the last pass of a call remembers an empty claim.
        """
        leases: list[Lease] = []
        mode, next_due = "new" if last else "try", None
        lease_ms = max(ceil_ms(request.lease), 1)
        worker = request.worker.replace(",", ";")  # the state record is comma-separated
        prior: list[Any] = []
        wake: list[Arg] = []
        if block:  # a hint only: correctness never depends on it
            wake = ["BLPOP", *(keys.named("wake") for keys in all_keys), f"{block:.3f}"]
        for keys in all_keys:
            if len(leases) >= request.limit and mode != "held":
                break
            need = max(request.limit - len(leases), 1)
            args: list[Arg] = [self._now(), lease_ms, need, token, mode, worker]
            args += self._retention_args()
            calls = [*before, ("claim", keys.all, args)]
            replies = self._runner.call_many(calls, first=wake)
            if before:
                prior, before = replies[:-1], []
            wake = []
            reply = replies[-1]
            self._see_epoch(keys.queue, reply[0])
            if reply[1] == b"RESENT":
                mode = "held"
            if reply[2]:
                due = int(reply[2])
                next_due = due if next_due is None else min(next_due, due)
            leases += self._leases(keys, reply[3:], token)
        return leases, mode == "held", next_due, prior

    def _leases(self, keys: QueueKeys, flat: list[Any], token: str) -> list[Lease]:
        leases = []
        for i in range(0, len(flat), 4):
            job_id, attempt, deadline, value = (
                flat[i].decode(),
                flat[i + 1],
                flat[i + 2],
                flat[i + 3],
            )
            lease_token = f"{token}.{attempt}"
            try:
                job = self._blobs.decode(job_id, keys.queue, value)
            except UndecodableJob as error:
                self._bury_undecodable(keys, job_id, lease_token, error)
                continue
            leases.append(Lease(job, lease_token, attempt, from_ms(deadline)))
        return leases

    def _bury_undecodable(
        self, keys: QueueKeys, job_id: str, token: str, error: UndecodableJob
    ) -> None:
        logger.error("job {} of {} cannot be decoded, dead-lettered: {}", job_id, keys.queue, error)
        info = ErrorInfo(type="UndecodableJob", message=str(error))
        reason = f"undecodable: {error.reason}"
        args: list[Arg] = [
            self._now(),
            job_id,
            token,
            self._codec.encode(info),
            "undecodable",
            reason,
        ]
        reply = self._run("fail", keys, [*args, *self._retention_args()])
        self._log_trimmed(keys.queue, reply[2])

    def _block_for(self, remaining: float, next_due: int | None) -> float:
        """How long to block on the wake lists before the next round (0: no more waiting).

        Never longer than the client's blocking limit (the socket timeout bounds it): the loop
        honours the rest of ``wait``.
        """
        if remaining <= 0:
            return 0.0
        block = min(remaining, self._until_due(next_due))
        if self._block_limit_s is not None:
            block = min(block, self._block_limit_s)
        return max(block, 0.001)

    def _until_due(self, next_due: int | None) -> float:
        if next_due is None:
            return _WAKE_POLL
        now_ms = int(self._now() or time.time() * 1000)
        return min(max((next_due - now_ms) / 1000, 0.001), _WAKE_POLL)

    # -- leases -------------------------------------------------------------------------------

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Every lease extended, in one round trip (one script per queue, pipelined)."""
        groups = _by_queue(leases)
        calls: list[tuple[str, Sequence[str], Sequence[Arg]]] = []
        for queue, indices in groups.items():
            args: list[Arg] = [self._now(), max(ceil_ms(duration), 1)]
            for index in indices:
                args += [leases[index].job_id, leases[index].token]
            calls.append(("renew", self._queue_keys(queue).all, args))
        if not calls:
            return []
        with guard("renew"):
            replies = self._runner.call_many(calls)
        renewed: list[Lease | None] = [None] * len(leases)
        for indices, reply in zip(groups.values(), replies, strict=True):
            for index, deadline in zip(indices, reply, strict=True):
                if deadline:
                    renewed[index] = attrs.evolve(leases[index], deadline=from_ms(deadline))
        return renewed

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the job completed; raises ``StaleLease`` unless this lease holds it."""
        encoded = b"" if result is None else self._codec.encode_result(result)
        args: list[Arg] = [self._now(), self._completed_ttl_ms]
        args += [lease.job_id, lease.token, encoded, _unique(lease.job)]
        with guard("complete", lease.job_id):
            reply = self._run("complete", self._queue_keys(lease.queue), args)
        if not reply[0]:
            raise self._stale(lease)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool]:
        """Complete a batch in one round trip; ``False`` where the lease was stale (not raised)."""
        groups, calls = self._complete_calls(leases, results)
        if not calls:
            return []
        with guard("complete_many"):
            replies = self._runner.call_many(calls)
        return self._applied(leases, groups, replies)

    def _complete_calls(
        self, leases: Sequence[Lease], results: Sequence[Any] | None
    ) -> tuple[dict[str, list[int]], list[_Call]]:
        """One ``complete`` script call per queue (results encoded before anything is sent)."""
        groups = _by_queue(leases)
        calls: list[_Call] = []
        for queue, indices in groups.items():
            args: list[Arg] = [self._now(), self._completed_ttl_ms]
            for index in indices:
                result = None if results is None else results[index]
                encoded = b"" if result is None else self._codec.encode_result(result)
                lease = leases[index]
                args += [lease.job_id, lease.token, encoded, _unique(lease.job)]
            calls.append(("complete", self._queue_keys(queue).all, args))
        return groups, calls

    def _applied(
        self, leases: Sequence[Lease], groups: dict[str, list[int]], replies: Sequence[Any]
    ) -> list[bool]:
        outcomes = [True] * len(leases)
        for indices, reply in zip(groups.values(), replies, strict=True):
            for index, done in zip(indices, reply, strict=True):
                if not done:
                    outcomes[index] = False
                    self._stale(leases[index])
        return outcomes

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record the error (with its attempt) and apply the decision."""
        keys = self._queue_keys(lease.queue)
        info = self._codec.encode(attrs.evolve(error, attempt=lease.attempt))
        match decision:
            case Retry(delay=delay):
                kind, arg = "retry", str(max(ceil_ms(delay), 0))
            case Dead(reason=reason):
                kind, arg = "dead", reason
        args: list[Arg] = [self._now(), lease.job_id, lease.token, info, kind, arg]
        with guard("fail", lease.job_id):
            status, state, trimmed = self._run("fail", keys, [*args, *self._retention_args()])
        if status == b"STALE":
            raise self._stale(lease)
        self._log_trimmed(lease.queue, trimmed)
        return JobState(state.decode())

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Give the job back, front of its priority (after ``delay``), attempt not spent."""
        args: list[Arg] = [self._now(), lease.job_id, lease.token, max(ceil_ms(delay), 0)]
        with guard("release", lease.job_id):
            reply = self._run("release", self._queue_keys(lease.queue), args)
        if reply == b"STALE":
            raise self._stale(lease)

    def reap(self) -> int:
        """Recover expired leases in every known queue, in batches of 1,000."""
        total = 0
        pending = self.queues()
        while pending:
            calls = [
                (
                    "reap",
                    self._queue_keys(queue).all,
                    [self._now(), _BATCH, *self._retention_args(), request_id()],
                )
                for queue in pending
            ]
            with guard("reap"):
                replies = self._runner.call_many(calls)
            for queue, (recovered, trimmed) in zip(pending, replies, strict=True):
                total += recovered
                self._log_trimmed(queue, trimmed)
            pending = [q for q, reply in zip(pending, replies, strict=True) if reply[0] >= _BATCH]
        if total:
            logger.warning("reaped {} expired lease(s)", total)
        return total

    def _stale(self, lease: Lease) -> StaleLease:
        logger.warning(
            "stale lease {} on job {} of {} rejected", lease.token, lease.job_id, lease.queue
        )
        return StaleLease(lease.job_id, lease.token)


def _outcome(job_id: str, reply: Any) -> EnqueueOutcome:
    if reply == 0:
        return Enqueued(job_id)
    return Duplicate(job_id, reply.decode())


def _unique(job: Job) -> str:
    """The unique key a completion releases, as the scripts store it ("F<key>"), or ""."""
    if job.unique is None or job.unique.until is not UniqueUntil.FINISHED:
        return ""
    return f"F{job.unique.key}"


def _by_queue(leases: Sequence[Lease]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for index, lease in enumerate(leases):
        groups.setdefault(lease.queue, []).append(index)
    return groups
