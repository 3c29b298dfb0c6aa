"""The memory queue's claim, and what each claim token took (so its re-send gets it back)."""

from __future__ import annotations

import secrets
import time
from datetime import datetime

from foundry.adapters.cache_support import to_ms
from foundry.adapters.memory.dead import DeadLetters
from foundry.adapters.memory.limits import PARK, from_ms
from foundry.adapters.memory.records import EntryCodec
from foundry.adapters.memory.store import Entry, Expiring, MemoryStore, QueueState
from foundry.domain import ErrorInfo, Job, JobState, Limit, UndecodableJob, UniqueUntil
from foundry.ports import UNSTARTED_LAPSES_MAX, ClaimRequest, Lease


class ClaimTokens:
    """What each claim token took, kept for its claim's lease duration (Q8)."""

    def __init__(self) -> None:
        self._taken: dict[str, list[tuple[str, str, str]]] = {}
        self._expiry = Expiring()

    def taken(self, token: str | None, now: datetime) -> list[tuple[str, str, str]] | None:
        """(queue, job id, lease token) of what ``token`` took, unless unknown or expired."""
        for _, expired in self._expiry.due(now):
            self._taken.pop(expired, None)
        return None if token is None else self._taken.get(token)

    def remember(self, token: str | None, leases: list[Lease], until: datetime) -> None:
        """Remember what ``token`` took until ``until`` (nothing without a token)."""
        if token is None:
            return
        self._taken[token] = [(lease.queue, lease.job_id, lease.token) for lease in leases]
        self._expiry.add(until, "", token)


class MemoryClaimer:
    """``claim``: queue by queue, priority then seq; waits on the store's condition."""

    def __init__(self, store: MemoryStore, records: EntryCodec, dead: DeadLetters) -> None:
        self._store = store
        self._cond = store.cond
        self._records = records
        self._dead = dead
        self._tokens = ClaimTokens()

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Lease up to ``request.limit`` jobs (see ``QueuePort.claim``); only ``wait`` passes
        in real time."""
        give_up_at = time.monotonic() + request.wait.total_seconds()
        token = request.claim_token
        with self._cond:
            self._started(request.started)
            while True:
                now = self._store.tick()
                taken = self._tokens.taken(token, now)
                if taken is not None:
                    return self._held(taken)
                leases = self._take(request, now)
                remaining = give_up_at - time.monotonic()
                if leases or remaining <= 0:
                    self._tokens.remember(token, leases, now + request.lease)
                    return leases
                self._cond.wait(remaining)

    def _take(self, request: ClaimRequest, now: datetime) -> list[Lease]:
        leases: list[Lease] = []
        deadline = now + request.lease
        starting = request.limit - request.ahead  # the first ones start now, the rest wait
        for name in request.queues:
            state = self._store.find(name)
            if state is None or state.paused:
                continue
            state.promote(now)
            while len(leases) < request.limit and (entry := state.pop_ready()) is not None:
                ahead = len(leases) >= starting
                taken = self._start(state, entry, deadline, request.worker, now, ahead=ahead)
                if taken is not None:
                    leases.append(taken)
        return leases

    def _started(self, leases: tuple[Lease, ...]) -> None:
        """Held-ahead leases whose jobs started: their attempts stay spent from now on."""
        for lease in leases:
            entry = self._store.entry(lease.queue, lease.job_id)
            if entry is not None and entry.holds(lease.token):
                entry.ahead = False

    def _start(
        self,
        state: QueueState,
        entry: Entry,
        deadline: datetime,
        worker: str,
        now: datetime,
        *,
        ahead: bool,
    ) -> Lease | None:
        try:
            job = self._records.job(entry)
        except UndecodableJob as error:
            entry.errors.append(ErrorInfo(type="UndecodableJob", message=str(error), at=now))
            self._dead.bury(state, entry, f"undecodable: {error.reason}", now)
            return None
        if job.limit is not None and not _admitted(state, entry, job.limit, now):
            return None
        entry.attempts += 1
        state.fence += 1
        entry.fence = state.fence
        entry.token = secrets.token_urlsafe(16)
        entry.deadline = deadline
        entry.worker = worker
        entry.ahead = ahead and entry.unstarted_lapses < UNSTARTED_LAPSES_MAX
        state.move(entry, JobState.ACTIVE)
        self._store.unique.release(entry, UniqueUntil.STARTED)
        return _lease(job, entry)

    def _held(self, taken: list[tuple[str, str, str]]) -> list[Lease]:
        held = []
        for queue, job_id, token in taken:
            entry = self._store.entry(queue, job_id)
            if entry is not None and entry.holds(token) and entry.deadline is not None:
                job = self._records.job(entry)
                held.append(_lease(job, entry))
        return held


def _lease(job: Job, entry: Entry) -> Lease:
    """The lease ``entry`` holds now (its token and deadline set)."""
    assert entry.token is not None
    assert entry.deadline is not None
    lapses = entry.unstarted_lapses if entry.ahead else 0
    return Lease(
        job,
        entry.token,
        entry.attempts,
        entry.deadline,
        entry.fence,
        ahead=entry.ahead,
        lapses=lapses,
    )


def _admitted(state: QueueState, entry: Entry, limit: Limit, now: datetime) -> bool:
    """Whether the entry may start now; if not, it is parked (or in line for its rate turn)
    or delayed until its turn."""
    verdict = state.limits.admit(entry.job_id, limit, to_ms(now))
    if verdict is None:
        if limit.rate is not None:
            state.give_turn(state.limits.next_turn(limit.key))
        return True
    if verdict == PARK:
        state.park(entry)
    else:
        state.schedule(entry, from_ms(verdict), now)
    return False
