"""``python -m bench.peers`` (``./dev bench peers``, ``./dev bench --peers huey,celery``):
Foundry and its peers, side by side.

Foundry's default runs beside the peers named even where ``--peers`` leaves it out (on
PostgreSQL for a peer that keeps its jobs there), so each peer has Foundry to compare with.
Each repetition runs every workload on every system, the systems' order rotated from one
repetition to the next; the table gives the median of the repetitions with min-max, the load
average seen while each system ran, and how Foundry's default compares with each peer.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.floor import bare_socket_us
from bench.peers.postgres import BenchDatabase
from bench.peers.run import WORKLOADS, Scale, Session, Workload
from bench.peers.systems import BY_KEY, FOUNDRY_ON, ROOT, SYSTEMS, System, with_args
from bench.peers.table import ratios, table
from bench.report import RESULTS, machine
from tests.redis_server import RedisServer

PEERS_VENV = ROOT / ".venv-peers"
#: Round trips timed for the floor in the header (about 0.1-0.4 s).
FLOOR_CALLS = 2_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    keys = ",".join(system.key for system in SYSTEMS)
    parser.add_argument("--peers", default=keys, help=f"systems, comma-separated (of {keys})")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median, min-max)")
    parser.add_argument("--quick", action="store_true", help="2,000 / 100 / 50 jobs per workload")
    parser.add_argument("--venv", type=Path, default=PEERS_VENV, help="the peers' venv")
    names = ",".join(workload.__name__ for workload in WORKLOADS)
    parser.add_argument("--only", default=names, help=f"workloads, comma-separated (of {names})")
    parser.add_argument(
        "--foundry-args",
        default="",
        help="extra 'foundry work' options for the Foundry columns (before/after comparisons)",
    )
    return parser


def systems_named(names: str, extra: tuple[str, ...] = ()) -> list[System]:
    """The systems ``--peers`` names, in its order, after the Foundry default of each store a
    named peer uses where it is not named; ``SystemExit`` naming the unknown ones and the
    known ones."""
    keys = [key.strip() for key in names.split(",") if key.strip()]
    unknown = [key for key in keys if key not in BY_KEY]
    if not keys or unknown:
        wrong = (
            ", ".join(map(repr, unknown)) + ", which the bench does not know"
            if unknown
            else "no system"
        )
        raise SystemExit(f"error: --peers names {wrong}; choose among {','.join(BY_KEY)}")
    named = list(dict.fromkeys(keys))
    defaults = dict.fromkeys(FOUNDRY_ON[BY_KEY[key].store] for key in named if BY_KEY[key].peer)
    added = [key for key in defaults if key not in named]
    return [with_args(BY_KEY[key], extra) for key in [*added, *named]]


def _versions(session: Session, systems: Sequence[System]) -> dict[str, str]:
    labels = {}
    for system in systems:
        version = session.drive(system, session.log_dir(), "version", system.dist)["version"]
        labels[system.key] = f"{system.label} {version}" if system.peer else system.label
    return labels


Collected = dict[str, dict[str, list[float]]]


def _repetition(
    session: Session, systems: Sequence[System], workloads: Sequence[Workload], loads: Collected
) -> Collected:
    samples: Collected = defaultdict(lambda: defaultdict(list))
    for system in systems:
        for workload in workloads:
            print(f"-- {system.key} {workload.__name__}", file=sys.stderr, flush=True)
            loads[system.key]["load"].append(os.getloadavg()[0])
            try:
                for key, value in workload(session, system).items():
                    samples[system.key][key].append(value)
            except Exception:  # one failed figure must not stop the run; it is reported
                error = traceback.format_exc(limit=-2).strip()
                print(f"{system.key} {workload.__name__} failed: {error}", file=sys.stderr)
                loads[system.key]["errors"].append(0.0)
            loads[system.key]["load"].append(os.getloadavg()[0])
    return samples


def _merge(into: Collected, more: Collected) -> None:
    for system, figures in more.items():
        for key, values in figures.items():
            into.setdefault(system, {}).setdefault(key, []).extend(values)


def _load_line(loads: Collected, labels: dict[str, str]) -> str:
    everything = [value for key in labels for value in loads[key]["load"]]
    parts = [
        f"{labels[key]} {min(loads[key]['load']):.2f}-{max(loads[key]['load']):.2f}"
        for key in labels
    ]
    return (
        f"Load average (1 min) during the run: {min(everything):.2f}-{max(everything):.2f} "
        f"({os.cpu_count()} cores); while each system ran: {'; '.join(parts)}.\n"
    )


def _floor(server: RedisServer) -> float:
    """The host's round-trip floor now: a bare-socket ``LPUSH`` to the bench's Redis, µs."""
    key = "bench-floor"
    floor = bare_socket_us(server.port, key, FLOOR_CALLS)
    with server.client() as admin:
        admin.delete(key)
    return floor


def header(when: str, stores: str, cpu: str, floors: Sequence[float]) -> str:
    """The table's first line: when, on what, and the host's round-trip floor before and
    after the run (one machine can differ several times over in it within an hour: a table
    is compared with another measured at about the same floor)."""
    floor = " / ".join(f"{value:.0f}" for value in floors)
    return (
        f"Measured {when}, {stores}, {cpu}; a bare-socket LPUSH round trip to that Redis "
        f"{floor} µs (before / after)"
    )


def _save(document: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"peers-{document['at']}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run every workload ``--runs`` times on each system; print and save the table."""
    args = _parser().parse_args(argv)
    extra = tuple(shlex.split(args.foundry_args))
    wanted = {name.strip() for name in args.only.split(",")}
    workloads = [workload for workload in WORKLOADS if workload.__name__ in wanted]
    systems = systems_named(args.peers, extra)
    if any(s.peer for s in systems) and not (args.venv / "bin" / "python").exists():
        print(f"no peers' venv at {args.venv}: run ./dev bench peers", file=sys.stderr)
        return 2
    for package in ("foundry", "bench"):
        compileall.compile_dir(ROOT / package, quiet=2)
    scale = Scale(2_000, 100, 50) if args.quick else Scale()
    scratch = Path(tempfile.mkdtemp(prefix="foundry-peers-"))
    server = RedisServer().start()
    database = BenchDatabase()
    started = datetime.now(UTC)
    try:
        floors = [_floor(server)]
        session = Session(server.url, args.venv / "bin", scratch, scale, database)
        labels = _versions(session, systems)
        samples: Collected = {}
        loads: Collected = defaultdict(lambda: defaultdict(list))
        for rep in range(args.runs):
            turn = rep % len(systems)
            order = systems[turn:] + systems[:turn]
            _merge(samples, _repetition(session, order, workloads, loads))
        floors.append(_floor(server))
        with server.client() as admin:
            redis_version = str(admin.info("server")["redis_version"])
        postgres_version = database.version()
    finally:
        server.close()
        database.close()
        shutil.rmtree(scratch, ignore_errors=True)
    sizes = {"drain": scale.drain, "cpu": scale.cpu}
    text = table(samples, labels, args.runs, sizes) + "\n" + _load_line(loads, labels)
    if "foundry" in labels and len(labels) > 1:
        text += "\n" + ratios(samples, labels, "foundry")
    if {"foundry-pg", "procrastinate"} <= labels.keys():
        pair = {key: labels[key] for key in ("foundry-pg", "procrastinate")}
        text += "\n" + ratios(samples, pair, "foundry-pg")
    when = f"{started:%Y-%m-%d %H:%M}-{datetime.now(UTC):%H:%M} UTC"
    stores = f"Redis {redis_version} on loopback, PostgreSQL {postgres_version} (own cluster)"
    print(header(when, stores, machine()["cpu"], floors) + "\n")
    print(text)
    document = {
        "at": started.strftime("%Y%m%dT%H%M%SZ"),
        "runs": args.runs,
        "quick": args.quick,
        "machine": {**machine(), "redis": redis_version, "postgres": postgres_version},
        "floor_us": floors,
        "labels": labels,
        "samples": samples,
        "loads": loads,
        "seconds": time.time() - started.timestamp(),
    }
    print(f"results: {_save(document)}", file=sys.stderr)
    failed = any(loads[key]["errors"] for key in labels)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
