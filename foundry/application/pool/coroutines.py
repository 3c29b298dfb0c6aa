"""``async def`` handlers in a pool child: one event loop per child, reused across jobs.

The loop is made at the child's first async job (never in the parent, never before the fork)
and kept, so clients a handler caches on it (an HTTP session, a database pool) serve the
child's later jobs; tasks a handler leaves behind run whenever the loop runs next (one that
raises ``SystemExit`` or ``KeyboardInterrupt`` then is logged, not the running job's failure).
The soft time limit is the loop's own timer: it cancels the handler's task, which sees
``CancelledError`` (and may clean up), and the attempt fails with ``SoftTimeLimitExceeded``.
A stop the child is told of by a signal (``stop``) cancels the task the same way, rather
than raising wherever the loop happens to be.
A handler that blocks the loop or ignores the cancellation is the hard limit's: the parent
kills the child, as for any handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from foundry.application.errors import SoftTimeLimitExceeded

log = logging.getLogger(__name__)


class ChildLoop:
    """This child's event loop, made on first use, and the handler task it runs now."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stopped: BaseException | None = None

    def run(self, awaitable: Awaitable[Any], soft: float) -> Any:
        """Run ``awaitable`` to its end on the loop; ``soft`` seconds (0: none) cancel it."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._task = task = self._loop.create_task(_within(awaitable, soft))
        try:
            return self._run(task)
        except asyncio.CancelledError:
            if self._stopped is not None:
                raise self._stopped from None
            raise
        finally:
            self._task, self._stopped = None, None

    def _run(self, task: asyncio.Task[Any]) -> Any:
        """Run the loop until ``task`` is done; its result. A ``SystemExit`` or
        ``KeyboardInterrupt`` (which asyncio lets out of the loop) raised by a task an earlier
        handler left behind is logged, and the loop runs on: it is not this job's failure."""
        loop = self._loop
        assert loop is not None
        while True:
            try:
                return loop.run_until_complete(task)
            except (SystemExit, KeyboardInterrupt) as error:
                if task.done():
                    raise
                log.error(
                    "a task an earlier async handler left behind raised %s: %s; ignored",
                    *(type(error).__name__, error),
                )

    def stop(self, error: BaseException) -> bool:
        """Cancel the running handler's task (safe from a signal handler): the handler sees
        ``CancelledError`` and its attempt fails with ``error``. False if none is running."""
        if self._loop is None or self._task is None:
            return False
        self._stopped = error
        self._loop.call_soon_threadsafe(self._task.cancel)
        return True


async def _within(awaitable: Awaitable[Any], soft: float) -> Any:
    if not soft:
        return await awaitable
    limit = asyncio.timeout(soft)
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise SoftTimeLimitExceeded(soft) from None
        raise
