"""``Reply``: the future of one call's reply that can resume its task in the read itself.

A plain future hands its task's resumption to ``loop.call_soon``, so on the stock asyncio loop
an awaited call costs two turns: one that reads the reply, one that runs the task on. A
``Reply`` keeps the first done-callback (the awaiting task's wake-up) aside, and ``wake``
sets the result and runs that callback at once, in its own context, inside the read: one turn
per round trip. Anything else goes the future's usual way: a result set with ``set_result`` or
``set_exception``, a cancellation, or a read made while a task is running (a task can only be
entered from the loop) schedules the callback with ``call_soon`` as a future does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

_Callback = Callable[[Any], object]
_set_result = asyncio.Future.set_result


class Reply(asyncio.Future[Any]):
    """A future whose first waiter ``wake`` can resume at once (see the module's docstring)."""

    #: The kept callback and its context. A class default and no ``__init__``: one Python
    #: frame less per call (the loop is ``Future``'s), one attribute to set.
    _kept: tuple[_Callback, contextvars.Context] | None = None

    def add_done_callback(
        self, fn: _Callback, *, context: contextvars.Context | None = None
    ) -> None:
        """The first callback while pending is kept for ``wake``; others go the usual way."""
        if self._kept is None and not self.done():
            self._kept = (fn, context if context is not None else contextvars.copy_context())
        else:
            super().add_done_callback(fn, context=context)

    def remove_done_callback(self, fn: _Callback) -> int:
        """As ``Future.remove_done_callback``, the kept callback included."""
        removed = super().remove_done_callback(fn)
        if self._kept is not None and self._kept[0] == fn:
            self._kept = None
            removed += 1
        return removed

    def set_result(self, result: Any) -> None:
        """As ``Future.set_result``; the kept callback is scheduled."""
        super().set_result(result)
        self._schedule()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        """As ``Future.set_exception``; the kept callback is scheduled."""
        super().set_exception(exception)
        self._schedule()

    def cancel(self, msg: Any | None = None) -> bool:
        """As ``Future.cancel``; the kept callback is scheduled."""
        if not super().cancel(msg):
            return False
        self._schedule()
        return True

    def wake(self, result: Any) -> None:
        """Set ``result`` (unless cancelled meanwhile) and run the kept callback now (scheduled
        instead if a task is running)."""
        if self.done():
            return
        _set_result(self, result)
        kept = self._kept
        if kept is None:
            return
        self._kept = None
        fn, context = kept
        try:
            context.run(fn, self)
        except RuntimeError:  # a task is running: this one can only be entered by the loop
            self.get_loop().call_soon(fn, self, context=context)

    def _schedule(self) -> None:
        kept = self._kept
        if kept is not None:
            self._kept = None
            self.get_loop().call_soon(kept[0], self, context=kept[1])
