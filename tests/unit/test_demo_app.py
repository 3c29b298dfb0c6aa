import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.outcome import Outcome, OutcomeKind
from foundry.domain import Dead, ErrorInfo, Job, PermanentFailure, RunAfter
from foundry.entrypoints.demo.app import (
    DEMO_QUEUE,
    UpstreamHiccup,
    charge_cancelled_order,
    count_primes,
    flaky,
    hash_chain,
    registry,
)
from foundry.entrypoints.demo.plan import EXPECTED_DEAD, plan
from foundry.entrypoints.demo.summary import account
from foundry.entrypoints.demo.tally import Tally, percentile
from foundry.ports import ClaimRequest, Lease
from tests.backends import LEASE


def test_count_primes_counts_the_primes_below_the_limit() -> None:
    assert [count_primes(n) for n in (0, 2, 3, 10, 100, 10_000)] == [0, 0, 1, 4, 25, 1229]


def test_hash_chain_applies_sha256_round_after_round() -> None:
    once = hashlib.sha256(b"seed").digest()

    assert hash_chain("seed", 2) == hashlib.sha256(once).hexdigest()


def test_flaky_fails_the_given_number_of_times_then_succeeds(tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(UpstreamHiccup):
            flaky(str(tmp_path), "k", failures=2)

    assert flaky(str(tmp_path), "k", failures=2) == "ok after 3 attempts"


def test_the_cancelled_order_always_fails_for_good() -> None:
    with pytest.raises(PermanentFailure):
        charge_cancelled_order(order_id=1)


@pytest.mark.parametrize("jobs", [4, 50, 1000])
def test_the_plan_has_the_requested_jobs_with_every_twist(jobs: int) -> None:
    planned = plan(jobs, "/tmp/ledger")

    names = [registry.name_of(item.target) for item in planned]
    assert len(planned) == jobs
    assert names.count("demo.charge_cancelled_order") == 1
    assert "demo.flaky" in names
    assert any(item.delay for item in planned)


def _dispatcher(queue: MemoryQueue, clock: ManualClock) -> Dispatcher:
    return Dispatcher(queue, registry, clock)


def test_accounting_accepts_completed_jobs_and_the_expected_dead() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = _dispatcher(queue, clock)
    ids = [
        dispatcher.dispatch(count_primes, {"limit": 10}),
        dispatcher.dispatch(charge_cancelled_order, {"order_id": 1}),
    ]
    first, second = queue.claim(ClaimRequest([DEMO_QUEUE], lease=LEASE, limit=2))
    queue.complete(first)
    queue.fail(second, ErrorInfo(type="PermanentFailure"), Dead("permanent"))

    accounting = account(queue, ids, DEMO_QUEUE)

    assert accounting.ok
    assert (accounting.completed, accounting.dead) == (1, 1)
    assert set(EXPECTED_DEAD) == {"demo.charge_cancelled_order"}


def test_accounting_flags_a_job_still_pending_or_dead_unexpectedly() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = _dispatcher(queue, clock)
    dead_id = dispatcher.dispatch(count_primes, {"limit": 10})
    [lease] = queue.claim(ClaimRequest([DEMO_QUEUE], lease=LEASE))
    queue.fail(lease, ErrorInfo(type="ValueError"), Dead("bug"))
    pending_id = dispatcher.dispatch(count_primes, {"limit": 10})

    accounting = account(queue, [dead_id, pending_id, "never-enqueued"], DEMO_QUEUE)

    assert not accounting.ok
    assert accounting.unexpected == (
        f"{dead_id} (dead)",
        f"{pending_id} (ready)",
        "never-enqueued (missing)",
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]

    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert percentile([], 0.5) == 0.0
    assert percentile([7.0], 0.99) == 7.0


def _lease(job: Job, attempt: int = 1) -> Lease:
    return Lease(job, f"token-{job.id}-{attempt}", attempt, job.created_at or ManualClock().now())


def test_the_tally_counts_outcomes_children_and_first_start_latency() -> None:
    start = ManualClock().now()
    job = Job("demo.count_primes", created_at=start)
    retried = Job("demo.flaky", created_at=start)
    delayed = Job("demo.count_primes", created_at=start, schedule=RunAfter(timedelta(seconds=1)))
    tally = Tally()
    error = ErrorInfo(type="UpstreamHiccup")

    tally.job_started(_lease(job), 11, start + timedelta(milliseconds=5))
    tally.job_finished(_lease(job), Outcome.completed(), 0.01)
    tally.job_started(_lease(retried), 12, start + timedelta(milliseconds=7))
    tally.job_finished(_lease(retried), Outcome.retried(timedelta(0), error), 0.01)
    tally.job_started(_lease(retried, 2), 11, start + timedelta(seconds=3))
    tally.job_finished(_lease(retried, 2), Outcome.dead("gave up", error), 0.01)
    tally.job_started(_lease(delayed), 12, start + timedelta(seconds=1))

    assert tally.outcomes[OutcomeKind.COMPLETED] == 1
    assert tally.outcomes[OutcomeKind.RETRIED] == 1
    assert tally.dead_reasons == {"gave up": 1}
    assert tally.finished == 2
    assert tally.per_child == {11: 2, 12: 2}
    assert tally.start_latency_ms == [5.0, 7.0]


def test_the_tally_ignores_jobs_that_are_not_ours() -> None:
    start = ManualClock().now()
    mine, leftover = Job("demo.a", created_at=start), Job("demo.b", created_at=start)
    tally = Tally(ours=frozenset({mine.id}))

    for job in (mine, leftover):
        tally.job_started(_lease(job), 1, start)
        tally.job_finished(_lease(job), Outcome.completed(), 0.01)

    assert tally.finished == 1
    assert tally.per_child == {1: 1}


def test_flaky_still_runs_when_its_ledger_directory_is_gone(tmp_path: Path) -> None:
    gone = tmp_path / "removed-by-an-earlier-demo"

    with pytest.raises(UpstreamHiccup):
        flaky(str(gone), "k", failures=1)

    assert flaky(str(gone), "k", failures=1) == "ok after 2 attempts"
