"""F7-F9: Redis restarts cleanly, dies (SIGKILL), or comes back empty, under real workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.faults.harness import Rig
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]

#: A restart keeps Redis away longer than the client's own retries last, so workers see it.
DOWN_S = 3.0


def test_f7_workers_ride_out_two_clean_redis_restarts_and_lose_nothing(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="everysec")
    rig = make_rig(server.url)
    queue = rig.queue()
    workers = [rig.start_worker(lease_s=10), rig.start_worker(lease_s=10)]
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(5, 15)) for _ in range(1000)])

    for restart, at in enumerate((300, 650), start=1):
        rig.wait_until(f"{at} jobs to finish", lambda at=at: rig.ended() >= at, 60)
        server.stop()
        rig.note(f"Redis SHUTDOWN #{restart}")
        time.sleep(DOWN_S)
        server.start()
        rig.note(f"Redis started again #{restart}")
    rig.wait_drained(queue)
    logs = {
        worker.name: (worker.count("queue unavailable ("), worker.count("queue reachable again"))
        for worker in workers
    }
    noticed = {worker.name: worker.count("queue unavailable") for worker in workers}
    report = rig.finish(queue)

    assert report.completed == 1000
    # One line each way per outage seen by a claim or renew, never one per retry. A worker
    # may see an outage only in a completion write ("queue unavailable, will retry"): its
    # claims, retried by the client for a second or two, went through once Redis was back
    # (on a loaded machine both workers did so for one of the two restarts). Each worker
    # notices an outage in some call.
    assert all(down == back and down <= 2 for down, back in logs.values()), logs
    assert all(noticed.values()), noticed


def test_f8_a_killed_redis_with_fsync_always_keeps_every_acknowledged_job(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    rig = make_rig(server.url)
    queue = rig.queue()
    rig.start_worker(lease_s=5)
    rig.start_worker(lease_s=5)
    rig.wait_ready()
    kill_at = rig.rng.randrange(100, 300)

    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 10)) for _ in range(kill_at)])
    server.kill()
    rig.note("Redis SIGKILL", after_enqueues=kill_at)
    threading.Timer(1.0, server.start).start()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 10)) for _ in range(400 - kill_at)])
    rig.wait_drained(queue)
    report = rig.finish(queue)

    assert report.acknowledged == 400
    assert report.completed == 400


def test_f9_a_redis_that_comes_back_empty_is_detected_as_data_loss(
    redis_server_factory: Callable[..., RedisServer], make_rig: Callable[[str], Rig]
) -> None:
    server = redis_server_factory()
    rig = make_rig(server.url)
    queue = rig.queue()
    worker = rig.start_worker(lease_s=5, concurrency=1)
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=50) for _ in range(200)])
    rig.wait_until("a few jobs to finish", lambda: rig.ended() >= 10, 30)

    server.restart()
    rig.note("Redis restarted without persistence")
    rig.wait_until("the worker to report the loss", lambda: worker.count("CRITICAL") > 0, 30)
    rig.stop_workers()
    report = rig.report(queue)

    assert worker.count("CRITICAL") >= 1
    assert report.lost, "the oracle must see the jobs Redis forgot"
