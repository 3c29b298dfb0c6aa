"""The systems side by side: how to start each one's worker and which venv runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent.parent
FOUNDRY_BIN = Path(sys.executable).parent
WORKERS = 2  # worker processes for every system


@attrs.frozen
class System:
    """One column of the table.

    ``worker`` is the command line that starts 2 worker processes at the system's defaults;
    its first word is a script of ``bin`` (the venv that runs the system).
    """

    key: str
    label: str
    dist: str  # the distribution whose version the column names
    app: str  # the module under bench.peers.apps
    worker: tuple[str, ...]
    peer: bool = True
    bulk: bool = False
    store: str = "redis"  # or "postgres": where its jobs live

    def python(self, peers_bin: Path) -> Path:
        """The interpreter that runs this system's producer."""
        return self.bin(peers_bin) / "python"

    def bin(self, peers_bin: Path) -> Path:
        """The venv ``bin`` directory of this system."""
        return peers_bin if self.peer else FOUNDRY_BIN

    def command(self, peers_bin: Path) -> list[str]:
        """The worker command with its script resolved in the right venv."""
        script, *args = self.worker
        return [str(self.bin(peers_bin) / script), *args]


def _foundry(key: str, label: str, *extra: str, store: str = "redis") -> System:
    app = "bench.peers.apps.foundry_app"
    worker = ("foundry", "work", "--app", f"{app}:registry", "--queues", "peers")
    command = (*worker, "--concurrency", str(WORKERS), *extra)
    return System(key, label, "foundry", app, command, False, True, store)


SYSTEMS = (
    _foundry("foundry", "Foundry default"),
    _foundry("foundry0", "Foundry --prefetch-window 0", "--prefetch-window", "0"),
    System(
        "huey",
        "Huey",
        "huey",
        "bench.peers.apps.huey_app",
        ("huey_consumer", "bench.peers.apps.huey_app.huey", "-w", str(WORKERS), "-k", "process"),
    ),
    System(
        "taskiq",
        "taskiq",
        "taskiq",
        "bench.peers.apps.taskiq_app",
        ("taskiq", "worker", "bench.peers.apps.taskiq_app:broker", "--workers", str(WORKERS)),
    ),
    System(
        "saq",
        "SAQ",
        "saq",
        "bench.peers.apps.saq_app",
        ("saq", "bench.peers.apps.saq_app.settings", "--workers", str(WORKERS)),
    ),
    System(
        "dramatiq",
        "Dramatiq",
        "dramatiq",
        "bench.peers.apps.dramatiq_app",
        ("dramatiq", "bench.peers.apps.dramatiq_app", "--processes", str(WORKERS)),
    ),
    _foundry("foundry-pg", "Foundry on PostgreSQL", store="postgres"),
    System(
        "procrastinate",
        "Procrastinate",
        "procrastinate",
        "bench.peers.apps.procrastinate_app",
        ("python", "-m", "bench.peers.apps.procrastinate_app"),
        bulk=True,
        store="postgres",
    ),
    System(
        "celery",
        "Celery",
        "celery",
        "bench.peers.apps.celery_app",
        ("celery", "-A", "bench.peers.apps.celery_app", "worker", "--concurrency", str(WORKERS)),
    ),
)
BY_KEY = {system.key: system for system in SYSTEMS}
#: Foundry's default on each store: the column a peer on that store is compared with.
FOUNDRY_ON = {"redis": "foundry", "postgres": "foundry-pg"}


def with_args(system: System, extra: tuple[str, ...]) -> System:
    """``system`` with ``extra`` worker options if it is Foundry (labelled with them)."""
    if system.peer or not extra:
        return system
    label = f"{system.label} {' '.join(extra)}"
    return attrs.evolve(system, label=label, worker=(*system.worker, *extra))
