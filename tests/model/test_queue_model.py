"""The queue state machine: random call sequences against a real adapter and the pure model.

``QueueMachine`` holds the rules and invariants; a subclass per adapter overrides
``make_queue``. An adapter that needs fixtures (a Redis URL) builds its subclass inside a test
function taking the fixture (a fresh key prefix per ``make_queue`` call) and runs it with
``hypothesis.stateful.run_state_machine_as_test(Machine, settings=MODEL_SETTINGS)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import timedelta

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.domain import (
    Batch,
    Callback,
    Dead,
    ErrorInfo,
    InvalidJob,
    Job,
    JobState,
    Retry,
    RetryPolicy,
    RunAfter,
    StaleLease,
    UniqueSpec,
)
from foundry.ports import ClaimRequest, Lease
from tests.backends import BatchQueue
from tests.model.queue_admin_rules import QUEUES
from tests.model.queue_batch_rules import BatchRules
from tests.model.queue_model import ModelBatch, ModelJob, QueueModel

UNIQUE_TTL = timedelta(seconds=30)
MS = timedelta(milliseconds=1)
MODEL_SETTINGS = settings(max_examples=200, stateful_step_count=50, deadline=None)

priorities = st.sampled_from([0, 0, 0, 1, -1])
delays = st.sampled_from([timedelta(0), timedelta(0), timedelta(0), MS, timedelta(seconds=2)])
uniques = st.sampled_from([None, None, ("k1", "finished"), ("k1", "started"), ("k2", "finished")])
lease_times = st.sampled_from([timedelta(seconds=1), timedelta(seconds=10)])
retries = st.sampled_from([None, timedelta(0), timedelta(seconds=1)])
workers = st.sampled_from(["w1", "w2"])
crashes = st.sampled_from([None, None, None, "w1", "w2"])
steps = st.sampled_from(
    [MS, timedelta(milliseconds=500), timedelta(seconds=1), timedelta(seconds=11)]
)


class QueueMachine(BatchRules):
    """Every rule calls the adapter and the model and compares what each says."""

    #: Whether the adapter holds jobs claimed ahead unstarted (``ClaimRequest.ahead``).
    holds_ahead = True

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.queue = self.make_queue(self.clock)
        self.model = QueueModel(now=self.clock.now())
        self.leases: list[Lease] = []
        self.holder: dict[str, str] = {}
        self.fences: dict[str, int] = {}  # each job's latest lease fence
        self.ids = itertools.count()
        self.last_call: Callable[[], None] | None = None

    def make_queue(self, clock: ManualClock) -> BatchQueue:
        """A fresh, empty adapter on ``clock``: the hook each subclass fills."""
        raise NotImplementedError

    def _pick(self, data: st.DataObject) -> Lease:
        """A lease the worker holds, mostly; sometimes any lease ever seen (maybe stale)."""
        current = [each for each in self.leases if self.model.holds(each.job_id, each.token)]
        prefer_current = data.draw(st.integers(0, 3), label="prefer a current lease") > 0
        return data.draw(st.sampled_from(current if current and prefer_current else self.leases))

    def _call(self, action: Callable[[], None]) -> None:
        self.last_call = action
        action()

    # -- rules --------------------------------------------------------------------------------

    @rule(
        queue=st.sampled_from([*QUEUES, QUEUES[0]]),
        priority=priorities,
        delay=delays,
        unique=uniques,
        max_attempts=st.integers(1, 3),
    )
    def enqueue(
        self,
        queue: str,
        priority: int,
        delay: timedelta,
        unique: tuple[str, str] | None,
        max_attempts: int,
    ) -> None:
        job = Job(
            "task",
            id=f"j{next(self.ids)}",
            queue=queue,
            priority=priority,
            schedule=RunAfter(delay),
            retry=RetryPolicy(max_attempts=max_attempts),
            unique=None if unique is None else UniqueSpec(unique[0], UNIQUE_TTL, unique[1]),
        )
        self._call(lambda: self._enqueue(job))

    @precondition(lambda self: any(job.unique for job in self.model.jobs.values()))
    @rule(data=st.data())
    def enqueue_with_a_key_in_use(self, data: st.DataObject) -> None:
        """Probe unique-key ownership: a new job reusing the key of a known one."""
        holders = [job for job in self.model.jobs.values() if job.unique is not None]
        other = data.draw(st.sampled_from(holders))
        assert other.unique is not None
        key, until = other.unique
        spec = UniqueSpec(key, UNIQUE_TTL, until)
        job = Job("task", id=f"j{next(self.ids)}", queue=other.queue, unique=spec)
        self._call(lambda: self._enqueue(job))

    @precondition(lambda self: bool(self.model.jobs))
    @rule(
        data=st.data(),
        delay=delays,
        unique=uniques,
        after_failure=st.sampled_from(["dead", "cancel", "run"]),
        max_attempts=st.integers(1, 2),
    )
    def enqueue_after_others(
        self,
        data: st.DataObject,
        delay: timedelta,
        unique: tuple[str, str] | None,
        after_failure: str,
        max_attempts: int,
    ) -> None:
        """A job waiting for one or two jobs of its queue (in any state)."""
        queue = data.draw(st.sampled_from(sorted({job.queue for job in self.model.jobs.values()})))
        mates = sorted(job.id for job in self.model.jobs.values() if job.queue == queue)
        after = data.draw(st.lists(st.sampled_from(mates), min_size=1, max_size=2, unique=True))
        job = Job(
            "task",
            id=f"j{next(self.ids)}",
            queue=queue,
            schedule=RunAfter(delay),
            retry=RetryPolicy(max_attempts=max_attempts),
            unique=None if unique is None else UniqueSpec(unique[0], UNIQUE_TTL, unique[1]),
            after=tuple(after),
            after_failure=after_failure,
        )
        self._call(lambda: self._enqueue(job))

    def _enqueue(self, job: Job) -> None:
        expected = self.model.enqueue(self._model_job(job), UNIQUE_TTL)

        outcome = self.queue.enqueue(job)

        assert outcome == expected

    def _model_job(self, job: Job) -> ModelJob:
        unique = None if job.unique is None else (job.unique.key, job.unique.until.value)
        return ModelJob(
            job.id,
            job.queue,
            job.priority,
            job.max_attempts,
            0,
            run_at=job.run_at(self.model.now),
            unique=unique,
            waits=set(job.after),
            after_failure=job.after_failure.value,
        )

    @rule(
        data=st.data(),
        queue=st.sampled_from(QUEUES),
        size=st.integers(1, 3),
        callbacks=st.sets(st.sampled_from(list(Callback))),
        max_attempts=st.integers(1, 2),
    )
    def enqueue_a_batch(
        self,
        data: st.DataObject,
        queue: str,
        size: int,
        callbacks: set[Callback],
        max_attempts: int,
    ) -> None:
        """A batch of fresh jobs (maybe waiting for jobs of their queue) with some callbacks,
        maybe allowing failures."""
        allow_failures = data.draw(st.booleans(), label="allow failures")
        mates = sorted(job.id for job in self.model.jobs.values() if job.queue == queue)
        members = []
        for _ in range(size):
            after = data.draw(st.lists(st.sampled_from(mates), max_size=1)) if mates else []
            rule = data.draw(st.sampled_from(["dead", "cancel", "run"]))
            members.append(
                Job(
                    "task",
                    id=f"j{next(self.ids)}",
                    queue=queue,
                    retry=RetryPolicy(max_attempts=max_attempts),
                    after=tuple(after),
                    after_failure=rule,
                )
            )
        batch = Batch(
            members,
            # In Callback's order, not the set's (its order varies with the process's hash seed,
            # and so would the ids, so a failing example would not replay).
            {
                which: Job("cb", id=f"j{next(self.ids)}", queue=queue)
                for which in Callback
                if which in callbacks
            },
            allow_failures=allow_failures,
            id=f"b{next(self.ids)}",
        )
        self._call(lambda: self._enqueue_batch(batch))

    def _enqueue_batch(self, batch: Batch) -> None:
        model = ModelBatch(
            batch.id,
            batch.queue,
            [],
            {which.value: self._model_job(job) for which, job in batch.callbacks.items()},
            batch.allow_failures,
        )
        self.model.enqueue_batch(model, [self._model_job(job) for job in batch.jobs], UNIQUE_TTL)

        self.queue.enqueue_batches([batch])

    @precondition(lambda self: bool(self.model.batches))
    @rule(data=st.data(), after_failure=st.sampled_from(["dead", "cancel", "run"]))
    def enqueue_after_a_batch(self, data: st.DataObject, after_failure: str) -> None:
        """A job waiting for a batch (running or ended) of its queue: a chain's next step."""
        batch = self.model.batches[data.draw(st.sampled_from(sorted(self.model.batches)))]
        job = Job(
            "task",
            id=f"j{next(self.ids)}",
            queue=batch.queue,
            after=(batch.id,),
            after_failure=after_failure,
        )
        self._call(lambda: self._enqueue(job))

    @precondition(lambda self: any(not b.finished for b in self.model.batches.values()))
    @rule(data=st.data(), many=st.booleans())
    def enqueue_a_job_under_a_running_batchs_id(self, data: st.DataObject, many: bool) -> None:
        """A job given a running batch's id is refused, and nothing of the call is stored
        (batch and job ids share one space; an ended batch may be forgotten, so not one)."""
        running = sorted(b.id for b in self.model.batches.values() if not b.finished)
        batch = self.model.batches[data.draw(st.sampled_from(running))]
        jobs = [Job("task", id=batch.id, queue=batch.queue)]
        if many:
            jobs.insert(0, Job("task", id=f"j{next(self.ids)}", queue=batch.queue))

        with pytest.raises(InvalidJob, match="is a batch's id"):
            self.queue.enqueue_many(jobs)

        assert all(self.queue.get(job.id, job.queue) is None for job in jobs[:-1])

    @precondition(lambda self: bool(_pending_callbacks(self.model.batches.values())))
    @rule(data=st.data(), place=st.sampled_from(["batch", "member", "callback"]))
    def enqueue_a_batch_under_a_pending_callbacks_id(self, data: st.DataObject, place: str) -> None:
        """A batch given, as its own id, a member's or a callback's, the id of a callback a
        running batch has not enqueued yet is refused, and nothing of it is stored (the
        callback would find its id taken)."""
        taken, queue = data.draw(st.sampled_from(_pending_callbacks(self.model.batches.values())))
        ids = {"batch": f"b{next(self.ids)}", "member": f"j{next(self.ids)}"} | {place: taken}
        callbacks = {Callback.THEN: Job("cb", id=taken, queue=queue)} if place == "callback" else {}
        batch = Batch([Job("task", id=ids["member"], queue=queue)], callbacks, id=ids["batch"])

        with pytest.raises(InvalidJob, match="callback of batch"):
            self.queue.enqueue_batches([batch])

        assert self.queue.batch(ids["batch"], queue) is None
        assert self.queue.get(ids["member"], queue) is None

    @precondition(lambda self: bool(_pending_callbacks(self.model.batches.values())))
    @rule(data=st.data(), many=st.booleans())
    def enqueue_a_job_under_a_pending_callbacks_id(self, data: st.DataObject, many: bool) -> None:
        """A job given the id of a callback a running batch has not enqueued yet is refused,
        alone or among others, and nothing of the call is stored (the callback would find its
        id taken)."""
        taken, queue = data.draw(st.sampled_from(_pending_callbacks(self.model.batches.values())))
        jobs = [Job("task", id=taken, queue=queue)]
        if many:
            jobs.insert(0, Job("task", id=f"j{next(self.ids)}", queue=queue))

        with pytest.raises(InvalidJob, match="callback of batch"):
            self.queue.enqueue_many(jobs) if many else self.queue.enqueue(jobs[0])

        assert all(self.queue.get(job.id, job.queue) is None for job in jobs)

    @precondition(lambda self: bool(self.model.batches))
    @rule(data=st.data())
    def cancel_a_batch(self, data: st.DataObject) -> None:
        """An operator cancels a batch (pending members cancelled, running ones asked to stop)."""
        batch_id = data.draw(st.sampled_from(sorted(self.model.batches)))
        self._call(lambda: self._cancel_batch(batch_id))

    def _cancel_batch(self, batch_id: str) -> None:
        self.model.cancel_batch(batch_id, "enough")

        record = self.queue.cancel_batch(batch_id, reason="enough")

        assert record is not None

    @rule(
        data=st.data(),
        order=st.sampled_from([QUEUES, QUEUES[::-1], QUEUES[:1]]),
        limit=st.sampled_from([1, 1, 1, 2, 3]),
        lease=lease_times,
        with_token=st.booleans(),
        worker=workers,
    )
    def claim(
        self,
        data: st.DataObject,
        *,
        order: list[str],
        limit: int,
        lease: timedelta,
        with_token: bool,
        worker: str,
    ) -> None:
        """A claim, some of it maybe held ahead, reporting the starts of some held leases."""
        token = f"c{next(self.ids)}" if with_token else None
        ahead, started = 0, []
        if self.holds_ahead:
            ahead = data.draw(st.integers(0, limit), label="ahead")
            held = [each for each in self.leases if each.ahead]
            started = data.draw(st.lists(st.sampled_from(held), max_size=2)) if held else []
        request = ClaimRequest(
            order,
            lease=lease,
            limit=limit,
            claim_token=token,
            worker=worker,
            ahead=ahead,
            started=started,
        )
        self._call(lambda: self._claim(request))

    def _claim(self, request: ClaimRequest) -> None:
        for each in request.started:
            self.model.started(each.job_id, each.token)
        held = self.model.held_by_claim(request.claim_token)

        leases = self.queue.claim(request)

        self.check_claimed(request, held, leases)

    def check_claimed(
        self, request: ClaimRequest, held: list[tuple[str, str]] | None, leases: list[Lease]
    ) -> None:
        """Compare what a claim returned with the model (``held``: what its token held before),
        then record it in the model."""
        if held is not None:
            assert [(each.job_id, each.token) for each in leases] == held
            assert all(each.fence == self.fences[each.job_id] for each in leases)
            flags = [(self.model.jobs[i].ahead, self.model.lapses_of(i)) for i, _ in held]
            assert [(each.ahead, each.lapses) for each in leases] == flags
            return
        expected = self.model.next_ready(list(request.queues), request.limit)
        assert [each.job_id for each in leases] == [job.id for job in expected]
        starting = request.limit - request.ahead
        for index, (job, each) in enumerate(zip(expected, leases, strict=True)):
            self.model.start(job, each.token, request.lease, ahead=index >= starting)
            assert (each.attempt, each.deadline, each.ahead, each.lapses) == (
                job.attempts,
                job.deadline,
                job.ahead,
                self.model.lapses_of(job.id),
            )
            assert each.fence > self.fences.get(job.id, 0)  # fencing: greater at every claim
            self.fences[job.id] = each.fence
        taken = [(each.job_id, each.token) for each in leases]
        self.model.remember_claim(request.claim_token, taken, request.lease)
        self.leases += leases
        self.holder.update((each.token, request.worker) for each in leases)

    @rule(data=st.data(), duration=lease_times)
    def renew(self, data: st.DataObject, duration: timedelta) -> None:
        """Renew a lease; one held ahead maybe as started (reporting its start)."""
        if not self.leases:
            return
        lease = self._pick(data)
        if lease.ahead and data.draw(st.booleans(), label="report the start"):
            lease = attrs.evolve(lease, ahead=False)
        self._call(lambda: self._renew(lease, duration))

    def _renew(self, lease: Lease, duration: timedelta) -> None:
        holds = self.model.holds(lease.job_id, lease.token)
        if not lease.ahead:
            self.model.started(lease.job_id, lease.token)

        [renewed] = self.queue.renew([lease], duration)

        if not holds:
            assert renewed is None
            return
        assert renewed is not None
        assert renewed.deadline == self.model.now + duration
        assert renewed.stop == self.model.jobs[lease.job_id].stop
        self.model.jobs[lease.job_id].deadline = renewed.deadline

    @rule(data=st.data(), op=st.sampled_from(["release", "fail", "complete"]), retry_in=retries)
    def finish_a_lease(self, data: st.DataObject, op: str, retry_in: timedelta | None) -> None:
        """Complete, fail (retry after ``retry_in``, or dead when None) or release a lease
        (delayed by ``retry_in``, if any)."""
        if not self.leases:
            return
        lease = self._pick(data)
        self._call(lambda: self._finish(lease, op, retry_in))

    def _finish(self, lease: Lease, op: str, retry_in: timedelta | None) -> None:
        holds = self.model.holds(lease.job_id, lease.token)
        resent = self.model.resent(lease.job_id, lease.token, op)
        if not holds and resent is None:
            with pytest.raises(StaleLease):
                self._apply(lease, op, retry_in)
            self.model.count(lease.queue, "stale_rejected")
            return

        state = self._apply(lease, op, retry_in)

        job = self.model.jobs[lease.job_id]
        if holds:
            self._apply_to_model(job, op, retry_in)
        if op == "fail":
            assert state == (job.last[2] if job.last else None)

    def _apply(self, lease: Lease, op: str, retry_in: timedelta | None) -> JobState | None:
        if op == "complete":
            self.queue.complete(lease)
            return None
        if op == "release":
            self.queue.release(lease, retry_in or timedelta(0))
            return None
        decision = Dead("gave up") if retry_in is None else Retry(retry_in)
        return self.queue.fail(lease, ErrorInfo("Boom", "model"), decision)

    def _apply_to_model(self, job: ModelJob, op: str, retry_in: timedelta | None) -> None:
        if op == "complete":
            self.model.complete(job)
        elif op == "release":
            self.model.release(job, retry_in or timedelta(0))
        else:
            self.model.fail(job, retry_in, "gave up")

    @rule(step=steps, then_reap=st.booleans(), crash=crashes)
    def advance_clock(self, step: timedelta, then_reap: bool, crash: str | None) -> None:
        """Time passes (a worker may crash meanwhile); then maybe the reaper runs."""
        self.crash_worker(crash)
        self.model.now = self.clock.advance(step)
        if then_reap:
            self.reap()

    @precondition(lambda self: self.model.boundaries())
    @rule(data=st.data(), after=st.sampled_from([timedelta(0), MS]), then_reap=st.booleans())
    def advance_clock_to_a_boundary(
        self, data: st.DataObject, after: timedelta, then_reap: bool
    ) -> None:
        """Land exactly on (or 1 ms past) a run time, lease deadline or key expiry."""
        moment = data.draw(st.sampled_from(self.model.boundaries())) + after
        self.clock.set(moment)
        self.model.now = moment
        if then_reap:
            self.reap()

    def reap(self) -> None:
        """Run the reaper (a rule through the two clock rules, so time and reaps interleave)."""
        self._call(self._reap)

    def _reap(self) -> None:
        expected = self.model.reap()

        recovered = self.queue.reap()

        assert recovered == expected

    def crash_worker(self, worker: str | None) -> None:
        """The worker dies: it never finishes its leases (the reaper must recover them)."""
        self.leases = [each for each in self.leases if self.holder[each.token] != worker]

    @precondition(lambda self: self.last_call is not None)
    @rule()
    def resend_last_call(self) -> None:
        assert self.last_call is not None
        self.last_call()

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_job_is_in_the_state_the_model_expects(self) -> None:
        for job in self.model.jobs.values():
            record = self.queue.get(job.id, job.queue)
            assert record is not None, f"job {job.id} was lost"
            expected = (self.model.state(job), job.attempts, job.errors, job.reason)
            assert (record.state, record.attempts, len(record.errors), record.reason) == expected

    @invariant()
    def every_batch_counts_what_the_model_counts(self) -> None:
        for batch in self.model.batches.values():
            record = self.queue.batch(batch.id, batch.queue)
            assert record is not None, f"batch {batch.id} was lost"
            progress = record.progress
            counts = (progress.completed, progress.failed, progress.cancelled, progress.total)
            assert counts == (batch.completed, batch.failed, batch.cancelled, batch.total)
            assert progress.cancel_requested == batch.cancel_requested
            assert {which.value for which in record.fired} == batch.fired

    @invariant()
    def every_queue_counts_what_the_model_counts(self) -> None:
        for queue in QUEUES:
            stats = self.queue.stats(queue)
            states = [self.model.state(j) for j in self.model.jobs.values() if j.queue == queue]
            sizes = [states.count(s) for s in (JobState.READY, JobState.DELAYED, JobState.ACTIVE)]
            totals = [self.model.totals.get((queue, t), 0) for t in ("completed", "failed")]
            stale = self.model.totals.get((queue, "stale_rejected"), 0)
            assert [stats.ready, stats.delayed, stats.active] == sizes
            assert stats.dead == states.count(JobState.DEAD)
            assert [stats.completed, stats.failed, stats.stale_rejected] == [*totals, stale]


class MemoryQueueMachine(QueueMachine):
    """The model against ``MemoryQueue``."""

    def make_queue(self, clock: ManualClock) -> BatchQueue:
        """A fresh memory queue."""
        return MemoryQueue(clock)


TestMemoryQueueModel = MemoryQueueMachine.TestCase
TestMemoryQueueModel.settings = MODEL_SETTINGS


def _pending_callbacks(batches: Iterable[ModelBatch]) -> list[tuple[str, str]]:
    """(id, queue) of each callback a running batch has not enqueued yet, sorted."""
    return sorted(
        (job.id, batch.queue)
        for batch in batches
        if not batch.finished
        for which, job in batch.callbacks.items()
        if which not in batch.fired
    )
