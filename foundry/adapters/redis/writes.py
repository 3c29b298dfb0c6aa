"""What a worker writes about the jobs it holds: renew, complete (one or a batch), fail,
release; and the reaper's recovery of leases that expired.

An error reply to one of these writes (a key of the wrong type, a script error) is no outage:
it raises ``QueueBroken`` naming the queue, which the pool retries a bounded while, then ends
the job; a lost connection raises ``QueueUnavailable``, retried for as long as it lasts.

Every write is one function call per queue, the calls of several queues in one write; a
stale lease is counted by the function and logged here. Each call is answered on its own,
so a queue that refuses its call does not stop the others' (nor count against them):
``complete_calls`` and ``outcomes`` also serve ``complete_and_claim``, whose completions ride
in front of the claim and are reported refused job by job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import attrs
import redis

from foundry.adapters.redis.broken import broken, refusing
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, from_ms, request_id
from foundry.adapters.redis.retention import Retention
from foundry.adapters.redis.runner import Arg, Call, FunctionRunner
from foundry.domain import (
    Cancel,
    ConfigurationError,
    Dead,
    Decision,
    ErrorInfo,
    Job,
    JobState,
    Progress,
    QueueBroken,
    QueuesBroken,
    QueueUnavailable,
    Retry,
    StaleLease,
    UniqueUntil,
)
from foundry.ports.queue_types import Lease

log = logging.getLogger(__name__)

_REAP_BATCH = 1000


class LeaseWrites:
    """The lease operations of ``QueuePort`` over the queue's parts."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        records: RecordCodec,
        *,
        retention: Retention,
        completed_ttl: timedelta,
    ) -> None:
        self._runner = runner
        self._keys = keys
        self._clock = clock
        self._records = records
        self._retention = retention
        self._completed_ttl_ms = str(ceil_ms(completed_ttl))

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Every lease extended, in one round trip (one call per queue)."""
        groups = _by_queue(leases)
        calls: list[Call] = []
        for queue, indices in groups.items():
            args: list[Arg] = [self._clock.arg(), max(ceil_ms(duration), 1)]
            for index in indices:
                lease = leases[index]
                started = "" if lease.ahead else "1"
                args += [lease.job_id, lease.token, encode_progress(lease.progress), started]
            calls.append(("renew", self._keys.queue(queue).first, args))
        if not calls:
            return []
        with guard("renew"):
            replies, _ = self._each(list(groups), calls)  # a broken queue's leases are lost
        renewed: list[Lease | None] = [None] * len(leases)
        for indices, reply in zip(groups.values(), replies, strict=True):
            for index, answer in zip(indices, reply or [None] * len(indices), strict=True):
                renewed[index] = _renewed(leases[index], answer)
        return renewed

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the job completed; raises ``StaleLease`` unless this lease holds it."""
        args: list[Arg] = [self._clock.arg(), self._completed_ttl_ms, lease.job_id, lease.token]
        args += [self._records.encode_result(result), _unique(lease.job)]
        keys = self._keys.queue(lease.queue)
        with guard("complete", lease.job_id), refusing(self._runner.client, keys):
            reply = self._runner.call("complete", keys.first, args)
        if not reply[0]:
            raise _stale(lease)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        """Complete a batch in one round trip; ``False`` where the lease was stale, a queue's
        ``QueueBroken`` where that queue refused its call (neither raised)."""
        groups, calls = self.complete_calls(leases, results)
        if not calls:
            return []
        with guard("complete_many"):
            replies = self._runner.call_many(calls, errors_in_place=True)
        return self.outcomes(leases, groups, replies)

    def complete_calls(
        self, leases: Sequence[Lease], results: Sequence[Any] | None
    ) -> tuple[dict[str, list[int]], list[Call]]:
        """One ``complete`` call per queue (results encoded before anything is sent)."""
        groups = _by_queue(leases)
        calls: list[Call] = []
        for queue, indices in groups.items():
            args: list[Arg] = [self._clock.arg(), self._completed_ttl_ms]
            for index in indices:
                result = None if results is None else results[index]
                lease = leases[index]
                args += [lease.job_id, lease.token]
                args += [self._records.encode_result(result), _unique(lease.job)]
            calls.append(("complete", self._keys.queue(queue).first, args))
        return groups, calls

    def outcomes(
        self, leases: Sequence[Lease], groups: dict[str, list[int]], replies: Sequence[Any]
    ) -> list[bool | QueueBroken]:
        """Each completion's outcome from the ``complete`` calls' replies, error replies in
        their places: applied, stale (``False``), or the ``QueueBroken`` of the queue that
        refused it (an error reply that is no queue's own, e.g. a database number the server
        lacks, is raised)."""
        outcomes: list[bool | QueueBroken] = [True] * len(leases)
        for (queue, indices), reply in zip(groups.items(), replies, strict=True):
            if isinstance(reply, redis.ResponseError):
                error = broken(self._runner.client, self._keys.queue(queue), reply)
                if not isinstance(error, QueueBroken):
                    raise error from reply
                for index in indices:
                    outcomes[index] = error
                continue
            for index, done in zip(indices, reply, strict=True):
                if not done:
                    outcomes[index] = False
                    _stale(leases[index])
        return outcomes

    def start_calls(self, leases: Sequence[Lease], folded: str) -> tuple[list[Arg], list[Call]]:
        """The jobs of these leases held ahead started: the id and token pairs of queue
        ``folded`` (its claim carries them), and one ``start`` call per other queue."""
        pairs: list[Arg] = []
        calls: list[Call] = []
        for queue, indices in _by_queue(leases).items():
            args: list[Arg] = []
            for index in indices:
                args += [leases[index].job_id, leases[index].token]
            if queue == folded:
                pairs = args
            else:
                calls.append(("start", self._keys.queue(queue).first, args))
        return pairs, calls

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record the error (with its attempt) and apply the decision."""
        keys = self._keys.queue(lease.queue)
        info = self._records.encode_error(attrs.evolve(error, attempt=lease.attempt))
        match decision:
            case Retry(delay=delay):
                kind, arg = "retry", str(max(ceil_ms(delay), 0))
            case Dead(reason=reason):
                kind, arg = "dead", reason
            case Cancel(reason=reason):
                kind, arg = "cancel", reason
        args: list[Arg] = [self._clock.arg(), lease.job_id, lease.token, info, kind, arg]
        args += [*self._retention.args, self._completed_ttl_ms]
        with guard("fail", lease.job_id), refusing(self._runner.client, keys):
            reply = self._runner.call("fail", keys.first, args)
        status, state, trimmed = reply
        if status == b"STALE":
            raise _stale(lease)
        self._retention.trimmed(lease.queue, trimmed)
        return JobState(state.decode())

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Give the job back, front of its priority (after ``delay``), attempt not spent."""
        args: list[Arg] = [self._clock.arg(), lease.job_id, lease.token, max(ceil_ms(delay), 0)]
        args.append(self._completed_ttl_ms)
        keys = self._keys.queue(lease.queue)
        with guard("release", lease.job_id), refusing(self._runner.client, keys):
            reply = self._runner.call("release", keys.first, args)
        if reply == b"STALE":
            raise _stale(lease)

    def reap(self, queues: list[str]) -> int:
        """Recover expired leases in ``queues``, in batches of 1,000 per queue and call; broken
        queues raise ``QueuesBroken`` (one ``QueueBroken`` each) once the others are reaped."""
        total, refused = 0, []
        pending = queues
        while pending:
            head: list[Arg] = [self._clock.arg(), _REAP_BATCH, *self._retention.args]
            calls: list[Call] = [
                (
                    "reap",
                    self._keys.queue(queue).first,
                    [*head, request_id(), self._completed_ttl_ms],
                )
                for queue in pending
            ]
            with guard("reap"):
                replies, broken_now = self._each(pending, calls)
            refused += broken_now
            answered = [
                (queue, reply) for queue, reply in zip(pending, replies, strict=True) if reply
            ]
            for queue, (recovered, trimmed) in answered:
                total += recovered
                self._retention.trimmed(queue, trimmed)
            pending = [queue for queue, reply in answered if reply[0] >= _REAP_BATCH]
        if total:
            log.warning("reaped %s expired lease(s)", total)
        broken_queues = [error for error in refused if isinstance(error, QueueBroken)]
        if len(broken_queues) < len(refused):  # an error reply that is no queue's own
            raise next(error for error in refused if not isinstance(error, QueueBroken))
        if broken_queues:
            raise QueuesBroken(broken_queues, total)
        return total

    def _each(
        self, queues: list[str], calls: list[Call]
    ) -> tuple[list[Any], list[QueueUnavailable | ConfigurationError]]:
        """The replies of one call per queue, in one write, each call answered on its own, so
        one broken queue does not stop the others: its reply is ``None`` and its
        ``QueueBroken`` is returned."""
        replies: list[Any] = self._runner.call_many(calls, errors_in_place=True)
        refused: list[QueueUnavailable | ConfigurationError] = []
        for index, (queue, reply) in enumerate(zip(queues, replies, strict=True)):
            if isinstance(reply, redis.ResponseError):
                replies[index] = None
                refused.append(broken(self._runner.client, self._keys.queue(queue), reply))
        return replies, refused


def encode_progress(progress: Progress | None) -> str:
    """A progress as renew stores it: "" for none, else "<fraction>[\x1f<note>]"."""
    if progress is None:
        return ""
    note = "" if progress.note is None else "\x1f" + progress.note
    return f"{progress.fraction!r}{note}"


def _renewed(lease: Lease, answer: Any) -> Lease | None:
    """The lease as renew answered: a deadline, ``[deadline, stop reason]``, or 0 (lost)."""
    if not answer:
        return None
    if isinstance(answer, list):
        deadline, reason = answer
        return attrs.evolve(lease, deadline=from_ms(deadline), stop=reason.decode())
    return attrs.evolve(lease, deadline=from_ms(answer))


def _stale(lease: Lease) -> StaleLease:
    log.warning("stale lease %s on job %s of %s rejected", lease.token, lease.job_id, lease.queue)
    return StaleLease(lease.job_id, lease.token)


def _unique(job: Job) -> str:
    """The unique key a completion releases, as the functions store it ("F<key>"), or ""."""
    if job.unique is None or job.unique.until is not UniqueUntil.FINISHED:
        return ""
    return f"F{job.unique.key}"


def _by_queue(leases: Sequence[Lease]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for index, lease in enumerate(leases):
        groups.setdefault(lease.queue, []).append(index)
    return groups
