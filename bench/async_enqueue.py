"""Workload: enqueue no-op jobs from one event loop through the ``AsyncDispatcher``.

Awaited one at a time, then 100 dispatches in flight at once (pipelined on the adapter's one
connection). The event loop's blocking is read from asyncio's own slow-callback report (debug
mode, ``slow_callback_duration`` = 1 ms) in a separate pass, since debug mode slows the loop.
"""

from __future__ import annotations

import asyncio
import logging
import re

from bench.app import noop, registry
from bench.env import Env
from bench.harness import Metric, Sample, Workload, rate, stopwatch
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.entrypoints.connect import connect
from foundry.entrypoints.settings import Driver, Settings

IN_FLIGHT = 100
_TOOK = re.compile(r"took ([0-9.]+) seconds")


def run_once(env: Env, backend: str) -> Sample:
    """Time ``count`` awaited dispatches, then ``count`` with ``IN_FLIGHT`` at once."""
    count = env.scale(20_000, 5_000)
    env.flush()
    settings = Settings(
        queue_driver=Driver.REDIS, redis_url=env.redis_url, queue_prefix=env.unique("aenq")
    )
    rates = asyncio.run(_rates(settings, count))
    return {**rates, "blocked_ms": _longest_block_ms(settings, min(count, 5_000))}


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


def _longest_block_ms(settings: Settings, count: int) -> float:
    """The longest callback asyncio reported over 1 ms while dispatching (0: none)."""
    took: list[float] = []

    class Slow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = _TOOK.search(record.getMessage())
            if found:
                took.append(float(found.group(1)) * 1000)

    handler = Slow()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        asyncio.run(_watched(settings, count), debug=True)
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    return max(took, default=0.0)


async def _watched(settings: Settings, count: int) -> None:
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 60.0  # connecting is not dispatching
    async with connect(settings) as fx:
        dispatcher = fx.async_dispatcher(registry)
        await dispatcher.dispatch(noop)
        loop.slow_callback_duration = 0.001
        for _ in range(count // 2):
            await dispatcher.dispatch(noop)
        await _concurrently(dispatcher, count // 2)


WORKLOADS = (
    Workload(
        name="async_enqueue",
        title="Enqueue no-op jobs from one event loop: awaited one by one, and 100 in flight",
        backends=("redis",),
        metrics=(
            Metric("single", "async enqueue, awaited one at a time", "jobs/s", target=8_000),
            Metric("concurrent", "async enqueue, 100 in flight", "jobs/s", target=30_000),
            Metric(
                "blocked_ms",
                "longest loop callback while dispatching",
                "ms",
                target=1.0,
                higher_is_better=False,
            ),
        ),
        run_once=run_once,
    ),
)
