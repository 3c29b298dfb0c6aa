"""F10: Redis stops answering (SIGSTOP, CLIENT PAUSE) - briefly, and longer than a lease."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.checker import Expectations, executions
from tests.faults.harness import Rig
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]

LEASE_S = 2.0


def test_f10_brief_redis_pauses_delay_jobs_but_run_none_twice(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory()
    rig = make_rig(server.url)
    queue = rig.queue()
    rig.start_worker(lease_s=6)
    rig.start_worker(lease_s=6)
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(50, 300)) for _ in range(60)])

    rig.wait_until("10 jobs to finish", lambda: rig.ended() >= 10, 30)
    server.pause()
    rig.note("Redis SIGSTOP for 1s")
    time.sleep(1.0)
    server.resume()
    rig.wait_until("30 jobs to finish", lambda: rig.ended() >= 30, 30)
    server.client().execute_command("CLIENT", "PAUSE", "1000", "ALL")
    rig.note("Redis CLIENT PAUSE 1000 ALL")
    rig.wait_drained(queue)
    report = rig.finish(queue, Expectations(check_overlaps=True))

    assert report.completed == 60
    assert report.reruns == 0


def test_f10_a_redis_pause_longer_than_the_lease_fences_children_before_rerunning(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory()
    rig = make_rig(server.url)
    queue = rig.queue()
    rig.start_worker(lease_s=LEASE_S)
    rig.start_worker(lease_s=LEASE_S)
    rig.wait_ready()
    # Jobs outlast the pause: an unfenced child would still run when another worker re-runs it.
    rig.enqueue(queue, [rig.job(ms=7000) for _ in range(4)])
    rig.wait_until("all four jobs to start", lambda: len(_started(rig)) == 4, 30)

    server.pause()
    paused_at = time.time()
    rig.note("Redis SIGSTOP for 4s (lease 2s)")
    time.sleep(4.0)
    server.resume()
    rig.note("Redis SIGCONT")
    rig.wait_drained(queue)
    report = rig.finish(queue, Expectations(check_overlaps=True))
    cut_short = [run for run in executions(rig.ledger.events()) if not run.finished]

    assert report.completed == 4
    assert report.reruns == 0, "a fenced child must be killed before it finishes"
    assert len(cut_short) == 4
    # No lease was renewed after the pause began, so every server-side deadline was at most
    # LEASE_S later: each first run must have stopped by then.
    assert all(run.last_seen <= paused_at + LEASE_S for run in cut_short), cut_short


def _started(rig: Rig) -> set[str]:
    return {event["job"] for event in rig.ledger.events() if event["ev"] == "start"}
