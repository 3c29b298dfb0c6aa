"""The Redis queue's claim: one function call per queue visited, and the wait for work.

While nothing is ready a claim blocks on the queues' wake lists (BLPOP) with its next round's
first claim pipelined behind it, so Redis runs that claim the moment a job arrives. The wake
lists are a hint only: a round after an early wake-up that finds nothing keeps waiting, and
only a final round with no BLPOP in front remembers an empty claim under its token. On Redis
Cluster, where a command's keys share one slot, the BLPOP waits on the first queue's list only,
and for at most ``CLUSTER_BLOCK_S`` when there are other queues to look at.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from foundry.adapters.redis.broken import refusing
from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.cluster import is_cluster
from foundry.adapters.redis.epochs import Epochs
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout, QueueKeys
from foundry.adapters.redis.record_codec import RecordCodec
from foundry.adapters.redis.records import ceil_ms, from_ms
from foundry.adapters.redis.retention import Retention
from foundry.adapters.redis.runner import Arg, Call, FunctionRunner
from foundry.domain import ErrorInfo, UndecodableJob
from foundry.ports.queue_types import ClaimRequest, Lease

log = logging.getLogger(__name__)

#: The longest one BLPOP blocks (seconds) when no delayed job is due sooner.
WAKE_POLL_S = 1.0
#: Redis ends a blocked BLPOP in its cron, ten times a second at the default ``hz``: a wait
#: for a job due sooner than this is slept here, or it would start up to 100 ms late.
SLEEP_UNDER_S = 0.1
#: On Redis Cluster a BLPOP waits on one queue's wake list (one slot): a claim over several
#: queues wakes at least this often to look at the others.
CLUSTER_BLOCK_S = 0.1


class Claimer:
    """Claims for one queue adapter; ``block_limit_s`` bounds a BLPOP (``None``: unbounded)."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        records: RecordCodec,
        *,
        epochs: Epochs,
        retention: Retention,
        block_limit_s: float | None,
    ) -> None:
        self._runner = runner
        self._keys = keys
        self._clock = clock
        self._records = records
        self._epochs = epochs
        self._retention = retention
        self._block_limit_s = block_limit_s
        self._cluster = is_cluster(runner.client)

    def claim(
        self, request: ClaimRequest, before: list[Call], started: list[Arg]
    ) -> tuple[list[Any], list[Lease]]:
        """The replies of ``before`` (calls sent in front of the first round; an error reply,
        a ``ResponseError``, in its call's place), and the leases.
        ``started``: the id and token pairs of the first queue's jobs held ahead that started,
        recorded by its first claim (every round visits that queue).

        Undecodable jobs met on the way go to the dead letters (never raised), so a claim may
        return fewer jobs than were ready.
        """
        all_keys = [self._keys.queue(queue) for queue in request.queues]
        token = request.claim_token or secrets.token_urlsafe(12)
        give_up = time.monotonic() + request.wait.total_seconds()
        replies: list[Any] = []
        block = 0.0
        while True:
            # A round behind a BLPOP may follow an early wake-up: it never ends the wait.
            last = not block and give_up - time.monotonic() <= 0
            with guard("claim"):
                leases, resent, next_due, prior = self._round(
                    all_keys, request, token, (before, started), last=last, block=block
                )
            if before:
                replies, before = prior, []
            started = []
            if leases or resent or last:
                return replies, leases
            block = self._block_for(give_up - time.monotonic(), next_due)
            if block < SLEEP_UNDER_S and next_due is not None:
                time.sleep(block)
                block = 0.0

    def _round(
        self,
        all_keys: list[QueueKeys],
        request: ClaimRequest,
        token: str,
        first: tuple[list[Call], list[Arg]],
        *,
        last: bool,
        block: float = 0.0,
    ) -> tuple[list[Lease], bool, int | None, list[Any]]:
        """One pass over the queues, after blocking ``block`` seconds on their wake lists.

        ``first``: the calls sent in front of the first queue's claim, and the start pairs
        that claim carries. Only the last pass of a call remembers an empty claim.
        """
        before, started = first
        leases: list[Lease] = []
        mode, next_due = "new" if last else "try", None
        lease_ms = max(ceil_ms(request.lease), 1)
        worker = request.worker.replace(",", ";")  # the state record is comma-separated
        prior: list[Any] = []
        wake: list[Arg] = []
        if block:  # a hint only: correctness never depends on it
            wake = ["BLPOP", *(keys.named("wake") for keys in all_keys), f"{block:.3f}"]
            if self._cluster and len(all_keys) > 1:
                # One slot per command: wait on the first queue's list, briefly.
                block = min(block, CLUSTER_BLOCK_S)
                wake = ["BLPOP", all_keys[0].named("wake"), f"{block:.3f}"]
        for keys in all_keys:
            if len(leases) >= request.limit and mode != "held":
                break
            need = max(request.limit - len(leases), 1)
            starting = max(request.limit - request.ahead - len(leases), 0)
            args: list[Arg] = [self._clock.arg(), lease_ms, need, token, mode, worker]
            args += [*self._retention.args, starting, *started]
            with refusing(self._runner.client, keys):
                # The calls in front are answered each on its own (a refusal of theirs is their
                # queue's, not this claim's); they ride in the first round, which has no BLPOP.
                calls: list[Call] = [*before, ("claim", keys.first, args)]
                replies = self._runner.call_many(calls, first=wake, errors_in_place=bool(before))
                if isinstance(replies[-1], ResponseError):
                    raise replies[-1]
            if before:
                prior, before = replies[:-1], []
            started = []
            wake = []
            reply = replies[-1]
            self._epochs.see(keys.queue, reply[0])
            if reply[1] == b"RESENT":
                mode = "held"
            if reply[2]:
                due = int(reply[2])
                next_due = due if next_due is None else min(next_due, due)
            leases += self._leases(keys, reply[3:], token)
        return leases, mode == "held", next_due, prior

    def _leases(self, keys: QueueKeys, flat: Sequence[Any], token: str) -> list[Lease]:
        leases = []
        for i in range(0, len(flat), 6):
            job_id, attempt, deadline, fence, value = (
                flat[i].decode(),
                flat[i + 1],
                flat[i + 2],
                int(flat[i + 3]),
                flat[i + 4],
            )
            ahead = flat[i + 5]  # b"" or, held ahead, its unstarted lapses so far
            lease_token = f"{token}.{attempt}.{fence}"
            try:
                job = self._records.decode_job(job_id, keys.queue, value)
            except UndecodableJob as error:
                self._bury_undecodable(keys, job_id, lease_token, error)
                continue
            lease = Lease(
                job,
                lease_token,
                attempt,
                from_ms(deadline),
                fence,
                ahead=bool(ahead),
                lapses=int(ahead or 0),
            )
            leases.append(lease)
        return leases

    def _bury_undecodable(
        self, keys: QueueKeys, job_id: str, token: str, error: UndecodableJob
    ) -> None:
        log.error("job %s of %s cannot be decoded, dead-lettered: %s", job_id, keys.queue, error)
        info = self._records.encode_error(ErrorInfo(type="UndecodableJob", message=str(error)))
        reason = f"undecodable: {error.reason}"
        args: list[Arg] = [self._clock.arg(), job_id, token, info, "undecodable", reason]
        reply = self._runner.call("fail", keys.first, [*args, *self._retention.args])
        self._retention.trimmed(keys.queue, reply[2])

    def _block_for(self, remaining: float, next_due: int | None) -> float:
        """How long to block on the wake lists before the next round (0: no more waiting).

        Never longer than the blocking limit (the socket timeout bounds it): the loop honours
        the rest of ``wait``.
        """
        if remaining <= 0:
            return 0.0
        block = min(remaining, self._until_due(next_due))
        if self._block_limit_s is not None:
            block = min(block, self._block_limit_s)
        return max(block, 0.001)

    def _until_due(self, next_due: int | None) -> float:
        if next_due is None:
            return WAKE_POLL_S
        return min(max((next_due - self._clock.local_ms()) / 1000, 0.001), WAKE_POLL_S)
