"""Faults under real ``foundry work`` processes on a PostgreSQL queue, with the ledger oracle.

Children SIGKILLed mid-job, a whole worker SIGKILLed with another one running, the server
restarted mid-drain (fast shutdown, then immediate: crash recovery from the WAL), and the
workers' connections terminated server-side (``pg_terminate_backend``) while they claim. Each
ends with the total-queue check: nothing acknowledged is lost, nothing completes twice beyond
the re-runs at-least-once allows. Seeds are printed (FOUNDRY_FAULT_SEED replays one).

The restart scenario runs on a throwaway cluster of its own (``initdb`` on a free port); the
others on the session's throwaway database, each in a schema of its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import psutil
import psycopg
import pytest

from foundry.application.pool.claims import PREFETCH_MAX
from foundry.domain import JobState
from tests.faults.checker import Expectations
from tests.faults.postgres_cluster import PostgresCluster
from tests.faults.postgres_rig import PostgresRig

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MakeRig = Callable[[str], PostgresRig]


@pytest.mark.timeout(240)
def test_pg1_children_sigkilled_during_a_drain_lose_nothing(
    postgres_url: str, make_pg_rig: MakeRig
) -> None:
    rig = make_pg_rig(postgres_url)
    queue = rig.queue()
    worker = rig.start_worker(lease_s=5)
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(20, 60)) for _ in range(300)])

    kills = 0
    while kills < 15 and not rig.drained(queue):
        target = kills * 15
        rig.wait_until(f"{target} jobs to end", lambda target=target: rig.ended() > target, 60)
        if worker.kill_child(rig.rng) is not None:
            kills += 1
            rig.note("SIGKILL a child", n=kills)
    rig.wait_drained(queue, timeout=120)
    report = rig.finish(queue, Expectations(spare_attempts=kills))

    assert kills >= 10, "the drain ended before the faults: the scenario proved little"
    assert report.completed == 300
    assert report.duplicated == 0


@pytest.mark.timeout(240)
def test_pg2_a_sigkilled_worker_s_jobs_run_elsewhere_after_its_leases_lapse(
    postgres_url: str, make_pg_rig: MakeRig
) -> None:
    rig = make_pg_rig(postgres_url)
    queue = rig.queue()
    victim = rig.start_worker(lease_s=3)
    survivor = rig.start_worker(lease_s=3)
    rig.wait_ready()
    rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(100, 400)) for _ in range(120)])
    # Killed while a child runs a job: between jobs (a loaded machine can make that long) the
    # victim might hold none that started.
    rig.wait_until(
        "the victim to run a job after 4 starts",
        lambda: len(rig.started_under(victim)) >= 4 and bool(_running_under(rig, victim.pid)),
        60,
    )

    # Killed before its jobs are read: a job read as active while the victim still ran could
    # complete before the kill and never run elsewhere. The parent dies first, so no child's
    # death is reported as a failed attempt.
    children = victim.children()
    victim.process.kill()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    victim.process.wait(10)
    held = {
        job_id
        for job_id in rig.started_under(victim)
        if (record := queue.get(job_id, rig.queue_name)) and record.state is JobState.ACTIVE
    }
    rig.note("SIGKILL the whole victim worker", pid=victim.pid, held=sorted(held))
    rig.workers.remove(victim)
    rig.wait_drained(queue, timeout=120)
    report = rig.finish(queue, Expectations(spare_attempts=2))

    assert held, "the victim held no job when it was killed: the scenario proved nothing"
    assert held <= rig.started_under(survivor)
    assert report.completed == 120
    assert report.duplicated == 0


@pytest.mark.timeout(300)
def test_pg3_workers_ride_out_a_fast_and_an_immediate_server_restart_and_lose_nothing(
    cluster: PostgresCluster, make_pg_rig: MakeRig
) -> None:
    rig = make_pg_rig(cluster.url)
    queue = rig.queue()
    workers = [rig.start_worker(lease_s=10), rig.start_worker(lease_s=10)]
    rig.wait_ready()
    producer = threading.Thread(
        target=rig.enqueue,
        args=(queue, [rig.job(ms=rig.rng.randrange(2, 10)) for _ in range(600)]),
        kwargs={"patience": 60},
    )
    producer.start()

    for mode, at in (("fast", 150), ("immediate", 350)):
        rig.wait_until(f"{at} jobs to finish", lambda at=at: rig.ended() >= at, 90)
        cluster.stop(mode)
        rig.note(f"PostgreSQL stopped -m {mode}")
        time.sleep(2.0)
        cluster.start()
        rig.note("PostgreSQL started again")
    producer.join(120)
    rig.wait_drained(queue, timeout=180)
    # "queue unavailable (" when a claim fails, "queue unavailable, will retry" when a
    # completion does: a worker with jobs held ahead may meet an outage in its writes only.
    logs = {
        worker.name: (worker.count("queue unavailable"), worker.count("queue reachable again"))
        for worker in workers
    }
    # The immediate stop loses the completions committed since the last WAL flush (they do
    # not wait for it); such a job runs again once its lease lapses, its attempt counted (a
    # call that reports a start waits for the flush). A job held ahead that started just
    # before the server went has its start reported by its worker's next call; if its lease
    # lapses first, the reaper gives its attempt back (its unstarted lapses counted, at most
    # UNSTARTED_LAPSES_MAX): a run with no attempt, at most what each worker held.
    held = 2 * (PREFETCH_MAX + 2)  # two workers: each its held jobs and its 2 children's
    report = rig.finish(queue, Expectations(spare_attempts=8, unreported_starts=held))

    assert not producer.is_alive()
    # Each worker saw the server go (a restart it slept through logs nothing; its recovery is
    # logged at its next call, which may come after the drain).
    assert all(down >= 1 for down, _ in logs.values()), logs
    assert report.acknowledged == 600
    assert report.completed == 600
    assert report.duplicated == 0


@pytest.mark.timeout(240)
def test_pg4_connections_terminated_server_side_during_claims_lose_nothing(
    postgres_url: str, make_pg_rig: MakeRig
) -> None:
    rig = make_pg_rig(postgres_url)
    queue = rig.queue()
    workers = [rig.start_worker(lease_s=5), rig.start_worker(lease_s=5)]
    rig.wait_ready()
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:  # keeps the workers claiming while their connections are cut
        while feeding.is_set():
            rig.enqueue(queue, [rig.job(ms=rig.rng.randrange(1, 20)) for _ in range(20)])
            time.sleep(0.05)

    producer = threading.Thread(target=feed)
    producer.start()
    terminated, give_up = 0, time.monotonic() + 90
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as admin:
        while terminated < 15 and time.monotonic() < give_up:
            ports = [port for worker in workers for port in _client_ports(worker.pid)]
            # Chosen first, terminated after: in one WHERE, PostgreSQL ran the terminate before
            # the port test, ending every claiming session of the server (other tests' too).
            rows = admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM ("
                " SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND client_port = ANY(%s) AND query LIKE %s OFFSET 0) chosen",
                [ports, "%claim(%"],  # claim( and complete_and_claim(
            ).fetchall()
            if rows:
                terminated += len(rows)
                rig.note("pg_terminate_backend of claiming connections", count=len(rows))
            time.sleep(rig.rng.uniform(0.02, 0.2))
    feeding.clear()
    producer.join(60)
    rig.wait_drained(queue, timeout=120)
    alive = [worker.process.poll() is None for worker in workers]
    report = rig.finish(queue, Expectations(spare_attempts=terminated))

    assert alive == [True, True], "a worker died of a terminated connection"
    assert terminated >= 15, "few claims were caught: the scenario proved little"
    assert report.acknowledged == len(rig.job_ids)
    assert report.completed == len(rig.job_ids)
    assert report.duplicated == 0


def _running_under(rig: PostgresRig, parent: int) -> set[str]:
    """Jobs a child of ``parent`` has started and not yet ended."""
    events = rig.ledger.events()
    ended = {(e["job"], e["pid"]) for e in events if e["ev"] == "end"}
    starts = [e for e in events if e["ev"] == "start" and e["ppid"] == parent]
    return {e["job"] for e in starts if (e["job"], e["pid"]) not in ended}


def _client_ports(pid: int) -> list[int]:
    """The local TCP ports of a worker parent's connections (its backends' client_port)."""
    try:
        return [c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.laddr]
    except psutil.NoSuchProcess:
        return []
