"""The producer side of one system, run in that system's venv by the bench:

``python -m bench.peers.driver APP ACTION [ARGS]`` prints one JSON object on stdout.

- ``version DIST``: the installed version of distribution ``DIST``.
- ``setup``: the app's ``setup()`` (a system on PostgreSQL creates its tables), ``{}``.
- ``single N``: one job sent outside the timing (connects), then ``N`` no-op jobs one ``send``
  at a time; ``{"seconds": wall, "cpu": this process's CPU seconds}``.
- ``bulk N BATCH``: ``N`` no-op jobs by the app's ``send_many`` in batches; ``{"seconds": ...}``.
- ``spin N MS [nap]``: ``N`` jobs spinning ``MS`` ms of CPU each (``nap``: sleeping ``MS``).
- ``latency WARM SENDS GAP_MS``: ``WARM`` stamps, waits until they ran, then ``SENDS`` stamps
  ``GAP_MS`` apart; ``{"sent": {n: perf_counter_ns before the send}}``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.peers.bodies import LOG_DIR, LineCounter

Send = Callable[[str, dict[str, Any]], Any]


async def _call(send: Send, body: str, kwargs: dict[str, Any]) -> None:
    result = send(body, kwargs)
    if inspect.isawaitable(result):
        await result


async def _single(send: Send, count: int) -> dict[str, Any]:
    await _call(send, "noop", {})
    cpu = time.process_time()
    if inspect.iscoroutinefunction(send):  # the loop itself, without a wrapper per call
        started = time.perf_counter()
        for _ in range(count):
            await send("noop", {})
    else:
        started = time.perf_counter()
        for _ in range(count):
            send("noop", {})
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


async def _spin(send: Send, count: int, ms: float, nap: bool = False) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"ms": ms, "nap": True} if nap else {"ms": ms}
    for _ in range(count):
        await _call(send, "spin", kwargs)
    return {}


async def _latency(send: Send, warm: int, sends: int, gap_ms: float) -> dict[str, Any]:
    counter = LineCounter(Path(os.environ[LOG_DIR]))
    for n in range(warm):
        await _call(send, "stamp", {"n": -1 - n})
    deadline = time.monotonic() + 120
    while counter.count() < warm:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {warm} warm-up jobs did not all run within 120 s")
        time.sleep(0.01)
    sent: dict[int, int] = {}
    for n in range(sends):
        time.sleep(gap_ms / 1e3)
        sent[n] = time.perf_counter_ns()
        await _call(send, "stamp", {"n": n})
    return {"sent": sent}


def _bulk(app: ModuleType, count: int, batch: int) -> dict[str, Any]:
    send_many: Callable[[str, dict[str, Any], int], None] = app.send_many
    send_many("noop", {}, 1)
    started = time.perf_counter()
    for start in range(0, count, batch):
        send_many("noop", {}, min(batch, count - start))
    return {"seconds": time.perf_counter() - started}


async def _start(app: ModuleType) -> None:
    start: Callable[[], Awaitable[None] | None] | None = getattr(app, "start", None)
    if start is not None:
        result = start()
        if result is not None:
            await result


async def _run(app: ModuleType, action: str, args: list[str]) -> dict[str, Any]:
    await _start(app)
    send: Send = app.send
    if action == "single":
        return await _single(send, int(args[0]))
    if action == "bulk":
        return _bulk(app, int(args[0]), int(args[1]))
    if action == "spin":
        return await _spin(send, int(args[0]), float(args[1]), args[2:] == ["nap"])
    if action == "latency":
        return await _latency(send, int(args[0]), int(args[1]), float(args[2]))
    raise SystemExit(f"unknown action {action!r}")


def main(argv: list[str]) -> int:
    """Run one action; its JSON answer on stdout."""
    target, action, *args = argv
    if action == "version":
        print(json.dumps({"version": importlib.metadata.version(args[0])}))
        return 0
    app = importlib.import_module(target)
    if action == "setup":
        app.setup()
        print(json.dumps({}))
        return 0
    print(json.dumps(asyncio.run(_run(app, action, args))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
