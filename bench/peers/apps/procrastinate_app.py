"""Procrastinate on PostgreSQL: ``PsycopgConnector``, tasks deferred with ``defer``; the worker
is ``python -m bench.peers.apps.procrastinate_app``: 2 ``procrastinate worker`` processes (its
default concurrency of 1 each), as every system gets 2 worker processes.

Reads ``BENCH_DATABASE_URL`` (the bench's own throwaway cluster).
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import procrastinate

from bench.peers.bodies import BODIES

DATABASE_URL = os.environ["BENCH_DATABASE_URL"]
QUEUE = "peers"

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DATABASE_URL))
for _name, _body in BODIES.items():
    app.task(name=_name, queue=QUEUE)(_body)


def setup() -> None:
    """Create Procrastinate's tables in the (empty) database."""
    with app.open():
        app.schema_manager.apply_schema()


def start() -> None:
    """Open the app (its connection pool) before the timed sends."""
    app.open()


def send(body: str, kwargs: dict[str, Any]) -> None:
    """``task.defer(**kwargs)``: Procrastinate's enqueue."""
    app.tasks[body].defer(**kwargs)


def send_many(body: str, kwargs: dict[str, Any], count: int) -> None:
    """``task.batch_defer`` of ``count`` jobs: Procrastinate's bulk enqueue."""
    app.tasks[body].batch_defer(*([kwargs] * count))


def main() -> int:
    """Two worker processes on the bench queue; they stop with the process group."""
    script = str(Path(sys.executable).with_name("procrastinate"))
    command = [script, "--app", "bench.peers.apps.procrastinate_app.app", "worker"]
    command += ["--queues", QUEUE]
    workers = [subprocess.Popen(command) for _ in range(2)]
    return max(worker.wait() for worker in workers)


if __name__ == "__main__":
    sys.exit(main())
