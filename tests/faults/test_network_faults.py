"""F11: a misbehaving network between Foundry and Redis (resets, latency, lost replies)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.faults.checker import Expectations
from tests.faults.harness import Rig
from tests.faults.proxy import FaultProxy
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]

#: How long an idle worker blocks in one claim (its "block timeout", PoolConfig.idle_wait).
IDLE_WAIT_S = 1.0


@pytest.fixture
def proxied(
    redis_server_factory: Callable[..., RedisServer], make_proxy: Callable[[int], FaultProxy]
) -> FaultProxy:
    return make_proxy(redis_server_factory().port)


def faults(proxy: FaultProxy, rig: Rig) -> threading.Thread:
    """Latency, then lost replies, then resets, each for a moment, while jobs flow."""

    def run() -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("latency 20ms", lambda: setattr(proxy, "latency", 0.02)),
            ("replies dropped", lambda: setattr(proxy, "drop_replies", True)),
            ("healed", proxy.heal),
            ("connections reset", proxy.reset),
            ("connections reset", proxy.reset),
        ]
        for text, act in steps:
            time.sleep(rig.rng.uniform(0.2, 0.6))
            act()
            rig.note(text)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_f11_resets_latency_and_lost_replies_neither_double_nor_lose_a_job(
    proxied: FaultProxy, make_rig: Callable[[str], Rig]
) -> None:
    rig = make_rig(proxied.url)
    rig.direct_url = f"redis://127.0.0.1:{proxied.target[1]}/0"
    queue = rig.queue()
    workers = [rig.start_worker(lease_s=20) for _ in range(2)]
    rig.wait_ready()

    injector = faults(proxied, rig)
    while injector.is_alive():
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 20)) for _ in range(10)])
    injector.join()
    rig.enqueue(queue, [rig.job() for _ in range(20)])
    rig.wait_drained(queue)
    resumed_in = _idle_workers_resume_after_heal(proxied, rig)
    report = rig.finish(queue)

    assert report.acknowledged == report.completed
    assert proxied.dropped_bytes > 0
    assert proxied.resets > 0
    assert resumed_in <= 2 * IDLE_WAIT_S + 0.5, f"{resumed_in:.2f}s after the heal"
    assert all(worker.process.returncode == 0 for worker in workers)


def _idle_workers_resume_after_heal(proxy: FaultProxy, rig: Rig) -> float:
    """Cut idle workers off, heal, and time how long the first new job waits to start."""
    proxy.refuse = True
    proxy.reset()
    rig.note("idle workers cut off")
    time.sleep(3 * IDLE_WAIT_S)
    direct = rig.queue(rig.direct_url)
    probe = rig.job()
    rig.enqueue(direct, [probe])
    healed_at = time.time()
    proxy.heal()
    rig.note("healed", at=healed_at)
    rig.wait_until("the probe job to start", lambda: probe.id in _started(rig), 10)
    start = next(e["t"] for e in rig.ledger.events() if e["ev"] == "start" and e["job"] == probe.id)
    print(f"  idle workers resumed {start - healed_at:.3f}s after the heal")
    return float(start - healed_at)


def _started(rig: Rig) -> set[str]:
    return {event["job"] for event in rig.ledger.events() if event["ev"] == "start"}


def test_f11_short_lease_a_claim_whose_reply_is_lost_is_resent_while_its_lease_holds(
    proxied: FaultProxy, make_rig: Callable[[str], Rig]
) -> None:
    """Replies dropped for moments under a 2 s lease: the socket timeout is bounded by the
    lease, so a claim applied but unanswered is re-sent while its token still holds its jobs
    (before, a 5 s timeout re-sent it too late: jobs leased to nobody, attempts without starts).
    """
    rig = make_rig(proxied.url)
    rig.direct_url = f"redis://127.0.0.1:{proxied.target[1]}/0"
    queue = rig.queue(rig.direct_url)  # the producer is not cut off: jobs keep coming
    workers = [rig.start_worker(lease_s=SHORT_LEASE_S) for _ in range(2)]
    rig.wait_ready()

    injector = _drop_replies_briefly(proxied, rig, times=6)
    while injector.is_alive():
        rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 10)) for _ in range(5)])
        time.sleep(0.05)
    injector.join()
    rig.wait_drained(queue)
    # A parent the loaded machine keeps from renewing until its fence point gives its leases
    # up (its log says so): each may leave an attempt without a start. A claim whose reply was
    # lost leaves none: it is re-sent while its token holds its jobs.
    report = rig.finish(queue, Expectations(fenced=rig.fenced()))

    assert report.acknowledged == report.completed
    assert proxied.dropped_bytes > 0
    assert all(worker.process.returncode == 0 for worker in workers)


#: The lease of the short-lease scenario (``QUEUE_TIMEOUT``), shorter than the 5 s default
#: ``REDIS_SOCKET_TIMEOUT``.
SHORT_LEASE_S = 2.0


def _drop_replies_briefly(proxy: FaultProxy, rig: Rig, times: int) -> threading.Thread:
    """Drop every reply for 0.3 s, ``times`` times, a second or so apart."""

    def run() -> None:
        for _ in range(times):
            time.sleep(rig.rng.uniform(0.6, 1.2))
            proxy.drop_replies = True
            rig.note("replies dropped")
            time.sleep(0.3)
            proxy.heal()
            rig.note("healed")

    thread = threading.Thread(target=run)
    thread.start()
    return thread
