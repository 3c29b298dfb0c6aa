"""``async def`` handlers in a pool child: one event loop per child, reused across jobs.

The loop is made at the child's first async job (never in the parent, never before the fork)
and kept, so clients a handler caches on it (an HTTP session, a database pool) serve the
child's later jobs; tasks a handler leaves behind run whenever the loop runs next. The soft
time limit is the loop's own timer: it cancels the handler's task, which sees
``CancelledError`` (and may clean up), and the attempt fails with ``SoftTimeLimitExceeded``.
A handler that blocks the loop or ignores the cancellation is the hard limit's: the parent
kills the child, as for any handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from foundry.application.errors import SoftTimeLimitExceeded


class ChildLoop:
    """This child's event loop, made on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[Any], soft: float) -> Any:
        """Run ``awaitable`` to its end on the loop; ``soft`` seconds (0: none) cancel it."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_within(awaitable, soft))


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
