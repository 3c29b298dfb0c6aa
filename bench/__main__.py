"""``python -m bench`` (``./dev bench``): run the workloads, print and save the table.

``--quick`` runs smaller workloads (about a minute); the full run stays under 10 minutes.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.env import Env
from bench.harness import Outcome, Workload, measure
from bench.report import markdown, save
from foundry.entrypoints.logging import configure_logging

# Modules defining WORKLOADS, in the order they run. A module whose imports fail (a part of
# Foundry not built yet) is reported and skipped; the others still run.
MODULES = (
    "bench.floor",
    "bench.enqueue",
    "bench.async_enqueue",
    "bench.replicated",
    "bench.redis_bytes",
    "bench.drain",
    "bench.cpu",
    "bench.latency",
    "bench.result_wait",
    "bench.rss",
    "bench.queue_ops",
    "bench.limits",
    "bench.batches",
    "bench.cluster",
    "bench.cache_ops",
    "bench.postgres_queue",
    "bench.dashboard",
    "bench.schedules",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small workloads, about a minute")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median, min-max)")
    parser.add_argument("--only", action="append", default=[], help="workload name (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser


def discover() -> tuple[list[Workload], list[str]]:
    """Every workload whose module imports, and one line per module that does not."""
    found: list[Workload] = []
    missing: list[str] = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            if error.name != name:  # a module not written yet is simply absent
                missing.append(f"{name}: {error}")
            continue
        found.extend(module.WORKLOADS)
    return found, missing


def compile_sources() -> None:
    """Write the project's bytecode, as an installed package has it, before timing startups.

    Where PYTHONDONTWRITEBYTECODE is set, each ``foundry work`` would otherwise compile the
    project's modules again (~60 modules, a quarter of its startup).
    """
    root = Path(__file__).resolve().parent.parent
    for package in ("foundry", "bench"):
        compileall.compile_dir(root / package, quiet=2)


def _selected(workloads: list[Workload], only: Sequence[str], quick: bool) -> list[Workload]:
    chosen = [w for w in workloads if not only or w.name in only]
    return [w for w in chosen if not (quick and w.full_only)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected workloads; exit 1 if one of them failed to run."""
    args = _parser().parse_args(argv)
    configure_logging("WARNING")  # the in-process pools' INFO lines would bury the table
    workloads, missing = discover()
    if args.list:
        for workload in workloads:
            print(f"{workload.name:14} {workload.title}")
        return 0
    for line in missing:
        print(f"not available: {line}", file=sys.stderr)
    compile_sources()
    env = Env(quick=args.quick)
    outcomes: list[Outcome] = []
    try:
        for workload in _selected(workloads, args.only, args.quick):
            for backend in workload.backends:
                print(f"-- {workload.name} ({backend}) x{args.runs}", file=sys.stderr, flush=True)
                outcomes.append(measure(workload, env, backend, args.runs))
        version = env.redis_version()
    finally:
        env.close()
    print(markdown(outcomes, args.runs))
    path = save(outcomes, runs=args.runs, quick=args.quick, redis_version=version)
    print(f"results: {path}", file=sys.stderr)
    for outcome in outcomes:
        if outcome.error:
            print(f"{outcome.workload.name} ({outcome.backend}):\n{outcome.error}", file=sys.stderr)
    return 1 if any(outcome.error for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
