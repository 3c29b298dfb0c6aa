"""Workload: enqueue no-op jobs from one event loop through the ``AsyncDispatcher``.

Awaited one at a time, then 100 dispatches in flight at once (pipelined on the adapter's one
connection), and the sync ``Dispatcher`` one at a time in the same run, so the two single
rates meet the same machine (their ratio is the figure that load does not move); both async
rates again on uvloop, the loop uvicorn runs when it is installed (``uvicorn[standard]``). The
event
loop's blocking is each callback's run, timed where asyncio's slow-callback report times it
(``Handle._run``) but without the debug mode that report needs (debug mode captures a stack
for every future, a cost larger than a dispatch's), and in the thread's CPU time: on a shared
machine wall time also counts other processes' turns. The callback that starts the bench's
own 100 dispatches at once is not the dispatches'. The garbage collector's passes, which run
inside whichever callback allocates past its threshold and last as long as the process's heap
is large, are taken out of the callback that hosted them and reported on their own.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvloop

from bench.app import noop, registry
from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.entrypoints.connect import connect
from foundry.entrypoints.settings import Driver, Settings

IN_FLIGHT = 100


def run_once(env: Env, backend: str) -> Sample:
    """Time ``count`` sync dispatches, ``count`` awaited ones, then ``count`` 100 at once."""
    count = env.scale(20_000, 5_000)
    env.flush()
    settings = Settings(
        queue_driver=Driver.REDIS, redis_url=env.redis_url, queue_prefix=env.unique("aenq")
    )
    sync = _sync_rate(settings, count)
    rates = asyncio.run(_rates(settings, count))
    on_uvloop = uvloop.run(_rates(settings, count))
    blocked, collecting = _longest_block_ms(settings, min(count, 5_000))
    return {
        **rates,
        "sync": sync,
        "single_vs_sync": rates["single"] / sync,
        "single_uvloop": on_uvloop["single"],
        "concurrent_uvloop": on_uvloop["concurrent"],
        "blocked_ms": blocked,
        "gc_ms": collecting,
    }


def _sync_rate(settings: Settings, count: int) -> float:
    with connect(settings) as fx:
        dispatcher = fx.dispatcher(registry)
        dispatcher.dispatch(noop)  # connect and load the library outside the timing
        with stopwatch() as elapsed:
            for _ in range(count):
                dispatcher.dispatch(noop)
        return rate(count, elapsed())


async def _rates(settings: Settings, count: int) -> dict[str, float]:
    async with connect(settings) as fx:
        dispatcher = fx.async_dispatcher(registry)
        await dispatcher.dispatch(noop)  # connect and load the library outside the timing
        with stopwatch() as elapsed:
            for _ in range(count):
                await dispatcher.dispatch(noop)
        single = rate(count, elapsed())
        with stopwatch() as elapsed:
            await _concurrently(dispatcher, count)
        concurrent = rate(count, elapsed())
    return {"single": single, "concurrent": concurrent}


async def _concurrently(dispatcher: AsyncDispatcher, count: int) -> None:
    for start in range(0, count, IN_FLIGHT):
        size = min(IN_FLIGHT, count - start)
        await asyncio.gather(*(dispatcher.dispatch(noop) for _ in range(size)))


def _longest_block_ms(settings: Settings, count: int) -> tuple[float, float]:
    """The longest loop callback while dispatching, in ms (the bench's own driver and the
    collector's passes excluded), and the longest collector pass."""
    took: list[float] = []
    collector = _Collector()
    gc.callbacks.append(collector.observe)
    try:
        asyncio.run(_watched(settings, count, took, collector))
    finally:
        gc.callbacks.remove(collector.observe)
    return max(took, default=0.0), max(collector.passes, default=0.0)


class _Collector:
    """The garbage collector's passes: their CPU time in all (s), and each one's (ms) while
    ``watching``."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.passes: list[float] = []
        self.watching = False
        self._started = 0.0

    def observe(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            spent = time.thread_time() - self._started
            self.spent += spent
            if self.watching:
                self.passes.append(spent * 1000)


@contextmanager
def _callbacks_timed(
    took: list[float], driver: Callable[[], Any], collector: _Collector
) -> Iterator[None]:
    """Time every callback the loop runs (``asyncio.Handle._run``), but the driver task's,
    less the collector's passes during it."""
    handle = asyncio.Handle
    run = handle._run

    def timed(self: asyncio.Handle) -> None:
        collected = collector.spent
        started = time.thread_time()
        run(self)
        if getattr(self._callback, "__self__", None) is not driver():  # type: ignore[attr-defined]
            spent = time.thread_time() - started - (collector.spent - collected)
            took.append(spent * 1000)

    handle._run = timed  # type: ignore[method-assign]
    collector.watching = True
    try:
        yield
    finally:
        collector.watching = False
        handle._run = run  # type: ignore[method-assign]


async def _watched(
    settings: Settings, count: int, took: list[float], collector: _Collector
) -> None:
    async with connect(settings) as fx:
        dispatcher = fx.async_dispatcher(registry)
        await dispatcher.dispatch(noop)  # connecting is not dispatching
        driver = asyncio.current_task()
        with _callbacks_timed(took, lambda: driver, collector):
            for _ in range(count // 2):
                await dispatcher.dispatch(noop)
            await _concurrently(dispatcher, count // 2)


WORKLOADS = (
    Workload(
        name="async_enqueue",
        title="Enqueue no-op jobs from one event loop: awaited one by one, and 100 in flight",
        backends=("redis",),
        metrics=(
            Metric("sync", "sync dispatch, one at a time (same run)", "jobs/s"),
            Metric("single", "async enqueue, awaited one at a time", "jobs/s", target=8_000),
            Metric("concurrent", "async enqueue, 100 in flight", "jobs/s", target=30_000),
            Metric("single_vs_sync", "awaited one at a time / sync (same run)", "x", target=1.0),
            Metric("single_uvloop", "async enqueue on uvloop, awaited one at a time", "jobs/s"),
            Metric("concurrent_uvloop", "async enqueue on uvloop, 100 in flight", "jobs/s"),
            Metric(
                "blocked_ms",
                "longest loop callback while dispatching (CPU, collector passes apart)",
                "ms",
                target=1.0,
                higher_is_better=False,
            ),
            Metric(
                "gc_ms",
                "longest garbage-collector pass while dispatching (CPU)",
                "ms",
                higher_is_better=False,
            ),
        ),
        run_once=run_once,
    ),
)
