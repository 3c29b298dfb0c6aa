"""``wake``: set a reply future's result and resume its awaiting task in the read itself.

A future's result hands its task's resumption to ``loop.call_soon``, so on the stock asyncio
loop an awaited call costs two turns: one that reads the reply, one that runs the task on.
``wake`` takes the future's one done-callback (the awaiting task's wake-up) off before it sets
the result, and runs it at once, in its own context, inside the read: one turn per round trip.
The future stays a plain asyncio future, which the task awaits on its fast path (a subclass
of its own costs the task attribute lookups and a Python ``add_done_callback`` per call, more
than the turn it saves). A future with no callback or several, or a read made while a task is
running (a task can only be entered from the loop), goes the future's usual way.
"""

from __future__ import annotations

import asyncio
from typing import Any


def wake(future: asyncio.Future[Any], result: Any) -> None:
    """Set ``future``'s ``result`` (it must be pending) and run its one done-callback now
    (scheduled instead if a task is running, as ``set_result`` would)."""
    callbacks = future._callbacks  # (callback, context) pairs: what asyncio's repr reads
    if callbacks is None or len(callbacks) != 1:
        future.set_result(result)
        return
    [(callback, context)] = callbacks
    future.remove_done_callback(callback)
    future.set_result(result)
    try:
        context.run(callback, future)
    except RuntimeError:  # a task is running: this one can only be entered by the loop
        future.get_loop().call_soon(callback, future, context=context)
