"""Contract: each claim of a job gives its lease a greater fencing token than the ones before."""

from __future__ import annotations

from datetime import timedelta

from foundry.adapters.clock import ManualClock
from foundry.domain import ErrorInfo, Retry
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job

REQUEST = ClaimRequest(["default"], lease=LEASE)


def test_a_job_s_fence_grows_with_each_claim_whatever_ended_the_lease_before(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    fences = []

    [lease] = queue.claim(REQUEST)
    fences.append(lease.fence)
    queue.release(lease)  # the attempt is not spent, the fence still moves on
    [lease] = queue.claim(REQUEST)
    fences.append(lease.fence)
    queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(0)))
    [lease] = queue.claim(REQUEST)
    fences.append(lease.fence)
    clock.advance(LEASE + timedelta(seconds=1))
    queue.reap()  # the lease lapsed: the job is back, its next holder must out-fence this one
    [lease] = queue.claim(REQUEST)
    fences.append(lease.fence)

    assert fences == sorted(set(fences))
    assert lease.attempt == 3


def test_a_re_sent_claim_gets_the_same_fences_back(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    request = ClaimRequest(["default"], lease=LEASE, limit=2, claim_token="resent-1")

    first = queue.claim(request)
    again = queue.claim(request)

    assert sorted((lease.job_id, lease.fence) for lease in again) == sorted(
        (lease.job_id, lease.fence) for lease in first
    )
    assert again[0].token == first[0].token
