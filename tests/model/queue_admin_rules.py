"""Admin rules of the queue state machine: delete, forget or requeue a dead letter, pause and
resume."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.backends import Queue
from tests.model.queue_model import DEAD, QueueModel

QUEUES = ["q1", "q2"]
ADMIN_OPS = ["delete", "forget", "drop", "requeue", "pause", "resume", "resume", "cancel", "cancel"]


class AdminRules(RuleBasedStateMachine):
    """An operator's calls, mixed into ``QueueMachine``; one rule, so they stay occasional."""

    queue: Queue
    model: QueueModel

    def _call(self, action: Callable[[], None]) -> None:
        raise NotImplementedError

    @rule(data=st.data(), op=st.sampled_from(ADMIN_OPS), queue=st.sampled_from(QUEUES))
    def admin(self, data: st.DataObject, op: str, queue: str) -> None:
        """Delete, drop (delete if pending) or cancel a job, forget (delete if dead) or requeue
        a dead letter, or pause or resume a queue."""
        dead = sorted(job.id for job in self.model.jobs.values() if job.state == DEAD)
        if op == "delete" and self.model.jobs:
            job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
            self._call(lambda: self._delete(job.queue, job.id))
        elif op == "forget" and self.model.jobs:
            job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
            self._call(lambda: self._forget(job.queue, job.id))
        elif op == "drop" and self.model.jobs:
            job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
            self._call(lambda: self._drop(job.queue, job.id))
        elif op == "cancel" and self.model.jobs:
            job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
            self._call(lambda: self._cancel(job.queue, job.id))
        elif op == "requeue" and dead:
            job = self.model.jobs[data.draw(st.sampled_from(dead))]
            self._call(lambda: self._requeue(job.queue, job.id))
        elif op == "pause":
            self.queue.pause(queue)
            self.model.paused.add(queue)
        elif op == "resume":
            self.queue.resume(queue)
            self.model.paused.discard(queue)

    def _delete(self, queue: str, job_id: str) -> None:
        expected = self.model.delete(job_id)

        deleted = self.queue.delete(queue, job_id)

        assert deleted == expected

    def _forget(self, queue: str, job_id: str) -> None:
        expected = self.model.delete_dead(job_id)

        deleted = self.queue.delete_dead(queue, job_id)

        assert deleted == expected

    def _drop(self, queue: str, job_id: str) -> None:
        expected = self.model.delete_pending(job_id)

        deleted = self.queue.delete_pending(queue, job_id)

        assert deleted == expected

    def _cancel(self, queue: str, job_id: str) -> None:
        expected = self.model.cancel(job_id, "stop")

        state = self.queue.cancel(job_id, queue, "stop")

        assert state == expected

    def _requeue(self, queue: str, job_id: str) -> None:
        job = self.model.jobs.get(job_id)
        expected = 0 if job is None else self.model.requeue(job)

        requeued = self.queue.requeue_dead(queue, [job_id])

        assert requeued == expected

    @invariant()
    def deleted_jobs_are_gone_and_pauses_show(self) -> None:
        for job_id in sorted(self.model.deleted):
            assert self.queue.get(job_id) is None
        listed = self.queue.queues()
        for queue in QUEUES:
            assert self.queue.stats(queue).paused == (queue in self.model.paused)
            assert queue in listed or queue not in self.model.paused  # paused ones are listed
