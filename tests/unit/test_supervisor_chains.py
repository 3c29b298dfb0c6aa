"""The supervisor and chains, driven by hand: a step that takes the previous step's result
(``result_as``) gets it, or goes dead when that result is no longer kept (fake children, a
memory queue, a manual clock)."""

from datetime import timedelta

from foundry.application.dispatcher import Dispatcher
from foundry.application.pool.config import PoolConfig
from foundry.domain import Dead, ErrorInfo, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE
from tests.pool_support import FAST, Harness, registry


def test_a_step_whose_previous_result_is_no_longer_kept_goes_dead_instead_of_coming_back() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST, cancel_check=None))
    first, second = Dispatcher(pool.queue, registry, pool.clock).chain(
        [("work", {}), ("work", {})], result_as="previous"
    )
    (lease,) = pool.queue.claim(ClaimRequest(["default"], lease=LEASE))
    pool.queue.complete(lease, 5)
    (lease,) = pool.queue.claim(ClaimRequest(["default"], lease=LEASE))
    pool.queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
    pool.clock.advance(timedelta(hours=2))  # the first step's record is forgotten
    assert pool.queue.get(first) is None
    pool.queue.requeue_dead("default", [second])  # `foundry failed retry`, much later

    pool.start()
    pool.advance(5)

    record = pool.queue.get(second)
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.reason is not None
    assert first in record.reason
    assert "no longer kept" in record.errors[-1].message
    assert pool.began == []
