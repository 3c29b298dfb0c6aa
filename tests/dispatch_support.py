"""Dispatchers for the dispatch contract: the sync one, and the async one driven from a test.

``AwaitedDispatcher`` runs each call of an ``AsyncDispatcher`` to completion on one event loop
of its own, so one suite of plain tests holds both dispatchers to the same promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.application.job_maker import Item
from foundry.ports import AsyncQueuePort


class AwaitedDispatcher:
    """``Dispatcher``'s methods over an ``AsyncDispatcher``, each awaited on ``runner``."""

    def __init__(
        self, dispatcher: AsyncDispatcher, queue: AsyncQueuePort, runner: asyncio.Runner
    ) -> None:
        self._dispatcher = dispatcher
        self._queue = queue
        self._runner = runner

    def dispatch(self, *args: Any, **options: Any) -> str:
        """``AsyncDispatcher.dispatch``, run to completion."""
        return self._runner.run(self._dispatcher.dispatch(*args, **options))

    def dispatch_many(self, items: Iterable[Item]) -> list[str]:
        """``AsyncDispatcher.dispatch_many``, run to completion."""
        return self._runner.run(self._dispatcher.dispatch_many(items))

    def close(self) -> None:
        """Close the async queue's connection on its loop, then the loop."""
        self._runner.run(self._queue.aclose())
        self._runner.close()


AnyDispatcher = Dispatcher | AwaitedDispatcher
