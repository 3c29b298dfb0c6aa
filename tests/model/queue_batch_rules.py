"""Batch rules of the queue state machine: ``complete_many``, and ``complete_and_claim``."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st
from hypothesis.stateful import rule

from foundry.ports import ClaimRequest, Lease
from tests.model.queue_admin_rules import QUEUES, AdminRules


class BatchRules(AdminRules):
    """A worker settling several leases in one call, maybe claiming in the same call."""

    leases: list[Lease]

    def check_claimed(
        self, request: ClaimRequest, held: list[tuple[str, str]] | None, leases: list[Lease]
    ) -> None:
        raise NotImplementedError

    @rule(
        data=st.data(),
        then_claim=st.booleans(),
        limit=st.sampled_from([1, 2]),
        with_token=st.booleans(),
    )
    def complete_a_batch(
        self, data: st.DataObject, then_claim: bool, limit: int, with_token: bool
    ) -> None:
        """Complete up to three leases (current, stale or repeated) in one call; then maybe
        claim in the same call."""
        if not self.leases:
            return
        batch = data.draw(st.lists(st.sampled_from(self.leases), min_size=1, max_size=3))
        token = f"b{len(self.leases)}x{data.draw(st.integers(0, 9))}" if with_token else None
        request = ClaimRequest(QUEUES, lease=timedelta(seconds=10), limit=limit, claim_token=token)
        self._call(lambda: self._complete_batch(batch, request if then_claim else None))

    def _complete_batch(self, batch: list[Lease], request: ClaimRequest | None) -> None:
        expected = [self._expect_completed(lease) for lease in batch]
        held = None if request is None else self.model.held_by_claim(request.claim_token)

        if request is None:
            applied = self.queue.complete_many(batch)
        else:
            applied, leases = self.queue.complete_and_claim(batch, [None] * len(batch), request)
            self.check_claimed(request, held, leases)

        assert applied == expected

    def _expect_completed(self, lease: Lease) -> bool:
        """Apply one completion of a batch to the model: whether the adapter must apply it."""
        if self.model.holds(lease.job_id, lease.token):
            self.model.complete(self.model.jobs[lease.job_id])
            return True
        if self.model.resent(lease.job_id, lease.token, "complete") is not None:
            return True
        self.model.count(lease.queue, "stale_rejected")
        return False
