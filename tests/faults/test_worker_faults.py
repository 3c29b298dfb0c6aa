"""F3: a worker's parent stalls (SIGSTOP) longer than its lease while another worker runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from foundry.domain import JobState
from tests.faults.checker import Expectations
from tests.faults.harness import Rig
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]

LEASE_S = 2.0


def test_f3_a_stalled_parents_jobs_are_rerun_elsewhere_and_its_late_results_rejected(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory()
    rig = make_rig(server.url)
    queue = rig.queue()
    stalled = rig.start_worker(lease_s=LEASE_S)
    other = rig.start_worker(lease_s=LEASE_S)
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(300, 800)) for _ in range(40)])
    rig.wait_until("worker1 to start a job", lambda: bool(rig.started_under(stalled)), 30)

    stalled.pause()
    rig.note("SIGSTOP worker1's parent", pid=stalled.pid)
    held = {
        job_id
        for job_id in rig.started_under(stalled)
        if (record := queue.get(job_id, rig.queue_name)) and record.state is JobState.ACTIVE
    }
    rig.wait_until("worker2 to re-run worker1's jobs", lambda: held <= rig.started_under(other), 30)
    rig.wait_drained(queue)
    stalled.resume()
    rig.note("SIGCONT worker1's parent", pid=stalled.pid)
    # The woken parent finds out its leases are gone as soon as a loaded machine lets it run:
    # by fencing its jobs, by a late completion rejected, or by a renewal the queue refuses
    # (whichever its first step after the stall is).
    rig.wait_until(
        "worker1 to fence, to have a late completion rejected or a renewal refused",
        lambda: sum(stalled.count(word) for word in ("stale", "fenc", "lease lost")) >= 1,
        30,
    )
    report = rig.finish(queue, Expectations(spare_attempts=2))

    assert held, "worker1 held no job when it was stopped; the scenario proved nothing"
    assert report.duplicated == 0
