"""A real pool on Redis, idle: its blocking claim is made by a child, which starts the first job
it gets itself. What a child can do to that claim (die in it, die in the job, run long) and a
stop while it is out leave no job lost and no attempt spent twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import redis

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import Job, JobState, RetryPolicy
from tests.backends import unique_prefix
from tests.faults.redis_workers import wait_for

pytestmark = [pytest.mark.redis]

registry = JobRegistry()
ONCE = RetryPolicy(max_attempts=1)


@registry.job(name="add")
def add(a: int, b: int) -> int:
    return a + b


@registry.job(name="vanishes", retry=ONCE)
def vanishes(code: int, runs: str) -> None:
    with Path(runs).open("a") as out:
        out.write("ran\n")
    os._exit(code)


@registry.job(name="stuck", retry=ONCE, timeout=timedelta(milliseconds=500))
def stuck() -> None:
    time.sleep(30)


@registry.job(name="kills_itself", retry=ONCE)
def kills_itself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@registry.job(name="pid")
def pid() -> int:
    return os.getpid()


@registry.job(name="nap")
def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@pytest.fixture
def queue(redis_url: str) -> Iterator[RedisQueue]:
    client = redis.Redis.from_url(redis_url)
    yield RedisQueue(client, prefix=unique_prefix("childclaims"))
    client.close()


@pytest.fixture
def dispatcher(queue: RedisQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock())


class Running:
    """A pool running in a thread of this process until ``stop``."""

    def __init__(self, queue: RedisQueue, **options: object) -> None:
        config = PoolConfig(idle_wait=timedelta(seconds=1), **options)  # type: ignore[arg-type]
        self.pool = Pool(queue, registry, config, clock=SystemClock(), workers=queue)
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.code = self.pool.run()

    def stop(self, *, cold: bool = False, within: float = 30.0) -> int | None:
        self.pool.request_stop(cold=cold)
        self._thread.join(within)
        return self.code

    def children(self) -> list[psutil.Process]:
        return psutil.Process().children()


def _blocked_claimers(client: redis.Redis) -> set[int]:
    """The local ports of the connections blocked in a BLPOP (a waiting claim)."""
    ports = set()
    for info in client.client_list():
        if info.get("cmd") == "blpop" and "b" in info.get("flags", ""):
            ports.add(int(str(info["addr"]).rsplit(":", 1)[1]))
    return ports


def _owner(port: int, processes: list[psutil.Process]) -> int | None:
    for process in processes:
        for conn in process.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port:
                return process.pid
    return None


def _waiting_claimer(client: redis.Redis, running: Running, what: str) -> int:
    """The pid of the child whose claim waits for work (once one does); fails if the claim
    waiting is on a connection of no child's (the parent's)."""
    wait_for(lambda: bool(_blocked_claimers(client)), 10, what)
    (port,) = _blocked_claimers(client)
    claimer = _owner(port, running.children())
    assert claimer is not None, "the claim waits on a connection of no child's"
    return claimer


def test_an_idle_pools_claim_waits_in_a_child_which_runs_the_job_it_gets(
    queue: RedisQueue, dispatcher: Dispatcher, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    running = Running(queue, concurrency=2)
    try:
        claimer = _waiting_claimer(client, running, "a claim to wait for work")

        job_id = dispatcher.dispatch("pid")
        wait_for(lambda: queue.get(job_id).state is JobState.COMPLETED, 10, "the job")  # type: ignore[union-attr]

        record = queue.get(job_id)
        assert record is not None
        assert (record.result, record.attempts) == (claimer, 1)
    finally:
        assert running.stop() == 0
        client.close()


def test_a_job_that_ends_the_child_that_claimed_it_runs_once_and_fails_with_its_exit_code(
    queue: RedisQueue, dispatcher: Dispatcher, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    running = Running(queue, concurrency=1)
    try:
        time.sleep(0.2)  # the child's claim waits: the job goes straight to it
        job_id = dispatcher.dispatch("vanishes", {"code": 7, "runs": str(runs)})
        wait_for(lambda: queue.get(job_id).state is JobState.DEAD, 10, "the job to die")  # type: ignore[union-attr]
        after = dispatcher.dispatch("add", {"a": 1, "b": 2})
        wait_for(lambda: queue.get(after).state is JobState.COMPLETED, 10, "the next job")  # type: ignore[union-attr]
    finally:
        assert running.stop() == 0
    assert runs.read_text() == "ran\n"  # its child died before telling its parent of it
    record = queue.get(job_id)
    assert record is not None
    assert record.attempts == 1
    assert (record.errors[0].type, record.errors[0].exit_code) == (
        "foundry.application.errors.WorkerLost",
        7,
    )
    assert queue.get(after).result == 3  # type: ignore[union-attr]


def test_a_child_killed_in_its_claim_is_replaced_and_no_job_is_lost(
    queue: RedisQueue, dispatcher: Dispatcher, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    running = Running(queue, concurrency=1)
    try:
        claimer = _waiting_claimer(client, running, "a claim to wait for work")
        os.kill(claimer, signal.SIGKILL)
        wait_for(
            lambda: any(child.pid != claimer for child in running.children()), 10, "a new child"
        )
        ids = dispatcher.dispatch_many([("add", {"a": n, "b": 1}) for n in range(5)])
        wait_for(
            lambda: all(queue.get(i).state is JobState.COMPLETED for i in ids),  # type: ignore[union-attr]
            10,
            "the jobs",
        )
    finally:
        assert running.stop() == 0
        client.close()
    assert [queue.get(i).attempts for i in ids] == [1] * 5  # type: ignore[union-attr]


def test_the_parent_enforces_the_time_limit_of_a_job_its_child_claimed(
    queue: RedisQueue, dispatcher: Dispatcher
) -> None:
    running = Running(queue, concurrency=1)
    try:
        time.sleep(0.2)
        job_id = dispatcher.dispatch("stuck")
        wait_for(lambda: queue.get(job_id).state is JobState.DEAD, 15, "the time limit")  # type: ignore[union-attr]
    finally:
        assert running.stop() == 0
    record = queue.get(job_id)
    assert record is not None
    assert record.errors[0].type == "foundry.application.errors.TimeLimitExceeded"


@pytest.mark.parametrize("cold", [False, True])
def test_a_stop_while_a_child_claims_leaves_the_queue_whole(
    queue: RedisQueue, dispatcher: Dispatcher, redis_url: str, cold: bool
) -> None:
    client = redis.Redis.from_url(redis_url)
    running = Running(queue, concurrency=2)
    wait_for(lambda: bool(_blocked_claimers(client)), 10, "a claim to wait for work")
    client.close()

    assert running.stop(cold=cold, within=10) == (130 if cold else 0)

    job_id = dispatcher.dispatch("add", {"a": 2, "b": 2})
    record = queue.get(job_id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.READY, 0)


@pytest.mark.timeout(60)
def test_a_burst_pool_whose_last_job_killed_its_child_stops_without_waiting_out_idle_wait(
    queue: RedisQueue, dispatcher: Dispatcher
) -> None:
    ok_id = dispatcher.dispatch("add", {"a": 1, "b": 2})
    job_id = dispatcher.dispatch("kills_itself")
    hour = timedelta(hours=1)  # a claim that waited would outlast the test's timeout
    config = PoolConfig(burst=True, concurrency=2, idle_wait=hour, heartbeat_every=hour)

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    record = queue.get(job_id)
    assert record is not None
    assert (code, record.state, queue.get(ok_id).result) == (0, JobState.DEAD, 3)  # type: ignore[union-attr]
    assert record.errors[0].signal == signal.SIGKILL


def test_with_a_child_busy_the_idle_childs_claim_waits_in_it_instead_of_polls(
    queue: RedisQueue, dispatcher: Dispatcher, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    running = Running(queue, concurrency=2)
    try:
        wait_for(lambda: bool(_blocked_claimers(client)), 10, "a claim to wait for work")
        long = dispatcher.dispatch("nap", {"seconds": 3})
        wait_for(lambda: queue.get(long).state is JobState.ACTIVE, 10, "the long job")  # type: ignore[union-attr]
        claimer = _waiting_claimer(client, running, "the idle child's claim to wait")

        job_id = dispatcher.dispatch("pid")
        wait_for(lambda: queue.get(job_id).state is JobState.COMPLETED, 10, "the job")  # type: ignore[union-attr]

        assert queue.get(job_id).result == claimer  # type: ignore[union-attr]
        assert queue.get(long).state is JobState.ACTIVE  # type: ignore[union-attr]
    finally:
        assert running.stop(cold=True) == 130
        client.close()
    record = queue.get(long)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.READY, 0)  # released unspent


def test_a_job_with_no_handler_that_a_child_claimed_goes_dead_naming_it(
    queue: RedisQueue, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    running = Running(queue, concurrency=1, unknown_handler_grace=timedelta(0))
    try:
        _waiting_claimer(client, running, "a claim to wait for work")
        job_id = queue.enqueue(Job("not.deployed", queue="default")).job_id
        wait_for(lambda: queue.get(job_id).state is JobState.DEAD, 10, "the job to die")  # type: ignore[union-attr]
        after = Dispatcher(queue, registry, SystemClock()).dispatch("add", {"a": 2, "b": 3})
        wait_for(lambda: queue.get(after).state is JobState.COMPLETED, 10, "the next job")  # type: ignore[union-attr]
    finally:
        assert running.stop() == 0
        client.close()
    record = queue.get(job_id)
    assert record is not None
    assert record.reason is not None
    assert record.reason.startswith("unknown handler 'not.deployed'")
