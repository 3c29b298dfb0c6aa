"""The supervisor's leases, driven by hand: batched renewal, fencing before a lease lapses,
lost leases, outages logged once (fake children, a memory queue, a manual clock).
"""

import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.supervisor import FIRST_CLAIMS_S
from foundry.domain import JobState
from foundry.ports import Lease
from foundry.ports.queue_types import WorkerInfo
from tests.log_support import foundry_messages
from tests.pool_support import FAST, REPLY_TIMEOUT_S, FlakyQueue, Harness, StalledRenewals


def test_leases_are_renewed_in_one_batch_every_third_of_the_lease() -> None:
    pool = Harness()
    first, second = pool.enqueue(2)
    pool.start()
    deadline = pool.queue.get(first).lease_deadline  # type: ignore[union-attr]

    pool.advance(9.9)
    unchanged = pool.queue.get(first).lease_deadline  # type: ignore[union-attr]
    pool.advance(0.1)

    assert unchanged == deadline
    assert pool.events.renewals == [(2, 0)]
    for job_id in (first, second):
        record = pool.queue.get(job_id)
        assert record is not None
        assert record.lease_deadline == pool.clock.now() + timedelta(seconds=30)


def test_a_child_is_told_to_fence_itself_before_the_lease_it_runs_under_lapses() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.enqueue(1)
    claimed_at = pool.now
    pool.start()

    pool.advance(10)

    # the parent fences at local deadline - lease/6; the child half a margin later
    assert pool.workforce.fences == [(0, claimed_at + 27.5), (0, claimed_at + 37.5)]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Foundry's WARNING (and worse) records, read with ``foundry_messages``."""
    caplog.set_level(logging.WARNING, logger="foundry")
    return caplog


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    warnings: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    pool.start()
    pool.queue.down = True

    for _ in range(5):
        pool.advance(1)
    pool.queue.down = False
    pool.advance(1)

    outage = [message for message in foundry_messages(warnings) if "queue" in message]
    assert len(outage) == 2
    assert outage[0].startswith("queue unavailable (")
    assert outage[1].startswith("queue reachable again after 5.0s")


def test_a_child_whose_lease_cannot_be_renewed_is_killed_before_the_deadline() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.down = True

    pool.advance(10)
    pool.advance(10)
    killed_early = pool.workforce.told("kill")
    pool.advance(5)

    assert killed_early == []
    assert pool.workforce.told("kill") == [0]
    assert pool.sup.slots[0].job is None
    assert pool.events.finished == [(job_id, pool.events.finished[0][1])]
    assert pool.events.finished[0][1].kind is OutcomeKind.ABANDONED


def test_a_fenced_jobs_late_result_is_not_written() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.queue.down = True
    pool.advance(25)
    pool.queue.down = False

    pool.reply(0, value="late")

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.ACTIVE


def test_a_lease_the_queue_gave_away_kills_its_child() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()
    pool.clock.advance(timedelta(seconds=31))
    pool.queue.reap()

    pool.advance(0)

    assert pool.workforce.told("kill") == [0]
    assert pool.events.finished[0][0] == job_id
    assert pool.events.finished[0][1].kind is OutcomeKind.ABANDONED


def test_a_held_job_fenced_after_a_renewal_leaves_the_buffer_and_is_never_handed_out() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST))
    running, held = pool.enqueue(2)
    pool.start()
    pool.advance(10)  # renewed: the book's leases are now the renewal's, not the claim's
    pool.queue.down = True

    for _ in range(3):
        pool.advance(9)  # 37 s: fenced (renewed at 10 for 30 s, 5 s of margin), both abandoned
    pool.queue.down = False
    pool.reply(0, value="late")
    pool.advance(1)

    assert list(pool.held()) == []
    assert [lease.job_id for lease in pool.began] == [running]
    finished = pool.events.finished
    abandoned = [job for job, outcome in finished if outcome.kind is OutcomeKind.ABANDONED]
    assert sorted(abandoned) == sorted([running, held])


def test_a_renewal_that_failed_after_blocking_is_tried_again_half_a_second_after_it_returned() -> (
    None
):
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=StalledRenewals)  # checks 1 s
    pool.enqueue(1)
    started_at = pool.now
    pool.start()
    queue = pool.queue
    assert isinstance(queue, StalledRenewals)
    queue.down = True

    pool.advance(1)  # the cancel check renews: it blocks 3 s, then fails
    pool.advance(0)  # the loop's next turns, at once
    pool.advance(0.4)
    early = list(queue.renewed_at)
    pool.advance(0.1)

    failed_at = started_at + 1 + REPLY_TIMEOUT_S
    assert early == [started_at + 1]
    assert queue.renewed_at == [started_at + 1, failed_at + 0.5]


class ReapsCounted(FlakyQueue):
    """Records, at each reap, how many claims were sent before it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reaps: list[int] = []

    def reap(self) -> int:
        self.reaps.append(len(self.claims))
        return super().reap()


def _starting_pool() -> tuple[Harness, ReapsCounted]:
    config = PoolConfig(concurrency=2, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=ReapsCounted)
    pool.enqueue(2)
    pool.sup.start()
    pool.sup.first_claims_first(pool.now)
    assert isinstance(pool.queue, ReapsCounted)
    return pool, pool.queue


def test_the_reap_waits_for_the_first_claims_of_every_child() -> None:
    pool, queue = _starting_pool()

    pool.sup.tick(pool.now)
    pool.sup.child_ready(0, pool.now)
    pool.sup.tick(pool.now)
    before_all_ready = list(queue.reaps)
    pool.sup.child_ready(1, pool.now)
    pool.sup.tick(pool.now)

    assert before_all_ready == []
    assert queue.reaps == [2]  # after each child's claim


def test_a_child_slow_to_start_holds_the_reap_back_only_briefly() -> None:
    pool, queue = _starting_pool()
    pool.sup.child_ready(0, pool.now)

    pool.clock.advance(timedelta(seconds=FIRST_CLAIMS_S))
    pool.sup.tick(pool.now)

    assert queue.reaps == [1]


class HeartbeatsBesideForks:
    """A worker registry that notes each heartbeat among the workforce's commands."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, int]] = []

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        self.commands.append(("heartbeat", info.pid))

    def workers(self) -> list[WorkerInfo]:
        return []

    def forget_worker(self, worker_id: str) -> None:
        pass


def test_the_heartbeat_is_written_before_the_first_fork() -> None:
    registry = HeartbeatsBesideForks()
    pool = Harness(PoolConfig(concurrency=2, idle_wait=FAST, cancel_check=None), registry)
    registry.commands = pool.workforce.commands

    pool.sup.start()
    pool.sup.tick(pool.now)

    pid = pool.sup.heartbeat.pid
    assert pool.workforce.commands == [("heartbeat", pid), ("spawn", 0), ("spawn", 1)]


class OneBadRenewal(FlakyQueue):
    """A memory queue whose first renew raises what no adapter raises on purpose (a reply
    that could not be decoded, an adapter's bug), as ``FlakyQueue`` would raise an outage."""

    broken_once = False

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        if not self.broken_once:
            self.broken_once = True
            raise ValueError("one reply could not be decoded (test)")
        return super().renew(leases, duration)


def test_a_renew_that_raises_unexpectedly_is_logged_and_tried_again_and_the_pool_lives_on(
    warnings: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=OneBadRenewal)
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.advance(10)  # the renew is due, and raises
    kept_after_failure = pool.running(0)
    pool.advance(1)  # tried again, well before the lease would be fenced
    pool.reply(0, value="done")

    assert kept_after_failure == job_id
    assert pool.workforce.told("kill") == []
    assert pool.sup.exit_code is None
    assert not pool.sup.stopping.requested
    assert pool.events.renewals == [(1, 0)]
    record = pool.queue.get(job_id)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, "done")
    logged = foundry_messages(warnings)
    assert any("one reply could not be decoded (test)" in message for message in logged)


class OneBadReap(FlakyQueue):
    """A memory queue whose first reap raises what no adapter raises on purpose."""

    reaps = 0

    def reap(self) -> int:
        self.reaps += 1
        if self.reaps == 1:
            raise ValueError("one reap reply could not be decoded (test)")
        return super().reap()


def test_a_reap_that_raises_unexpectedly_is_logged_and_the_next_one_runs(
    warnings: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=OneBadReap)
    pool.start()
    assert isinstance(pool.queue, OneBadReap)

    pool.advance(10)  # the first reap raises
    pool.advance(10)  # the next one runs

    assert pool.queue.reaps >= 2
    assert pool.sup.exit_code is None
    assert not pool.sup.stopping.requested
    logged = foundry_messages(warnings)
    assert any("one reap reply could not be decoded (test)" in message for message in logged)
