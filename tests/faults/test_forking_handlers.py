"""A handler that forks without exec: the forked copy must never speak for the pool's child.

Real ``foundry work --burst --concurrency 1`` on a Redis prefix. The copy returns (or raises)
while the child already runs the next job; every job must end with its own outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import JobState
from tests.backends import unique_prefix
from tests.faults.forking import QUEUE, registry

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _work(redis_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-c",
        "from foundry.entrypoints.cli import main; main()",
        "work",
        "--app",
        "tests.faults.forking:registry",
        "--queues",
        QUEUE,
        "--concurrency",
        "1",
        "--burst",
    ]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize("handler", ["fork_and_return", "fork_and_raise"])
def test_a_forked_copy_of_a_handler_never_answers_for_the_pools_child(
    redis_url: str, handler: str
) -> None:
    prefix = unique_prefix("fork")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix)
    forker = registry.make_job(handler, {"delay": 0.2})
    failing = [registry.make_job("sleep_and_raise", {"n": n, "seconds": 0.6}) for n in range(3)]
    queue.enqueue_many([forker, *failing])

    run = _work(redis_url, prefix)

    assert run.returncode == 0, run.stderr
    record = queue.get(forker.id)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, "parent-returned")
    for n, job in enumerate(failing):
        record = queue.get(job.id)
        assert record is not None
        assert record.state is JobState.DEAD, (n, record)
        assert [error.message for error in record.errors] == [f"job {n} failed on purpose"]
    assert "no longer holds" not in run.stderr
    assert "did not stop" not in run.stderr
