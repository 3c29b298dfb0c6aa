"""How soon ``Dispatcher.result`` returns once a job completed: the time from ``complete``
returning in the worker to ``result`` returning in a waiting thread (the completion wakes the
waiter; it does not poll), median and 99th percentile over many jobs.

``python -m bench.result_wait`` runs it alone; ``./dev bench`` runs it with the rest. The worker
is played in this process (claim, then complete), so only the wake-up is measured.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta

from bench.app import QUEUE, registry
from bench.backends import open_queue
from bench.env import Env
from bench.harness import Metric, Sample, Workload, percentile
from foundry.adapters.clock import SystemClock
from foundry.application.dispatcher import Dispatcher
from foundry.ports import ClaimRequest, QueuePort

LEASE = timedelta(minutes=5)


def _one(queue: QueuePort, dispatcher: Dispatcher) -> float:
    """Milliseconds from a completion to the waiting ``result`` call's return."""
    job_id = dispatcher.dispatch("bench.noop")
    [lease] = queue.claim(ClaimRequest([QUEUE], lease=LEASE))
    returned: list[float] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        dispatcher.result(job_id, timeout=10)
        returned.append(time.perf_counter())

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiting.wait()
    time.sleep(0.002)  # let it block first: a result already there is not what is measured
    queue.complete(lease, None)
    completed = time.perf_counter()
    waiter.join()
    return max(returned[0] - completed, 0.0) * 1000


def run_once(env: Env, backend: str) -> Sample:
    """One sample: the wake-up latency of ``env.scale(300, 100)`` waited jobs."""
    with open_queue(env, backend, env.unique("results")) as queue:
        dispatcher = Dispatcher(queue, registry, SystemClock())
        _one(queue, dispatcher)  # connect, load the library
        latencies = [_one(queue, dispatcher) for _ in range(env.scale(300, 100))]
    return {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


WORKLOADS = (
    Workload(
        name="result_wait",
        title="result(): completion to the waiting call's return",
        backends=("memory", "redis"),
        metrics=(
            Metric("p50", "wake-up latency p50", "ms", target=1.0, higher_is_better=False),
            Metric("p99", "wake-up latency p99", "ms", higher_is_better=False),
        ),
        run_once=run_once,
    ),
)


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--only", "result_wait", *sys.argv[1:]]))
