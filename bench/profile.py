"""``python -m bench.profile SCENARIO``: cProfile one hot path against a private redis-server.

Scenarios: ``dispatch`` (single enqueues), ``dispatch_many`` (batches), ``parent`` (the pool's
parent loop draining no-op jobs in this process; the children are not profiled). Prints the
top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from collections.abc import Callable

from bench.app import QUEUE, noop, registry
from bench.backends import BATCH, open_dispatcher, open_queue
from bench.env import Env
from bench.workers import fill
from foundry.adapters.clock import SystemClock
from foundry.application.pool import Pool, PoolConfig
from foundry.entrypoints.logging import configure_logging


def _dispatch(env: Env, count: int) -> Callable[[], None]:
    def run() -> None:
        with open_dispatcher(env, "redis", env.unique("profile")) as dispatcher:
            for _ in range(count):
                dispatcher.dispatch(noop)

    return run


def _dispatch_many(env: Env, count: int) -> Callable[[], None]:
    def run() -> None:
        with open_dispatcher(env, "redis", env.unique("profile")) as dispatcher:
            for start in range(0, count, BATCH):
                dispatcher.dispatch_many([(noop, None)] * min(BATCH, count - start))

    return run


def _parent(env: Env, count: int) -> Callable[[], None]:
    prefix = env.unique("profile")
    with open_queue(env, "redis", prefix) as queue:
        fill(queue, [("bench.noop", None)] * count)

    def run() -> None:
        with open_queue(env, "redis", prefix) as queue:
            config = PoolConfig(queues=(QUEUE,), concurrency=2, burst=True)
            Pool(queue, registry, config, clock=SystemClock()).run()

    return run


SCENARIOS = {"dispatch": _dispatch, "dispatch_many": _dispatch_many, "parent": _parent}


def main(argv: list[str] | None = None) -> int:
    """Profile one scenario and print its hottest functions."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="also save the raw profile here (for snakeviz etc.)")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    env = Env(quick=True)
    try:
        run = SCENARIOS[args.scenario](env, args.count)
        profiler = cProfile.Profile()
        profiler.runcall(run)
    finally:
        env.close()
    if args.out:
        profiler.dump_stats(args.out)
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
