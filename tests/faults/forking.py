"""Handlers that fork without exec, as a careless handler might: the forked copy returns from
(or raises out of) the handler while the real child goes on to the next job."""

from __future__ import annotations

import os
import time

from foundry import JobRegistry, RetryPolicy

QUEUE = "forks"
registry = JobRegistry()
_ONCE = RetryPolicy(max_attempts=1)


@registry.job(name="fork_and_return", queue=QUEUE, retry=_ONCE)
def fork_and_return(delay: float) -> str:
    """Fork; the copy returns ``"child-returned"`` after ``delay`` seconds."""
    if os.fork() == 0:
        time.sleep(delay)
        return "child-returned"
    return "parent-returned"


@registry.job(name="fork_and_raise", queue=QUEUE, retry=_ONCE)
def fork_and_raise(delay: float) -> str:
    """Fork; the copy raises after ``delay`` seconds."""
    if os.fork() == 0:
        time.sleep(delay)
        raise RuntimeError("raised in the forked copy")
    return "parent-returned"


@registry.job(name="sleep_and_raise", queue=QUEUE, retry=_ONCE)
def sleep_and_raise(n: int, seconds: float) -> None:
    """Sleep, then fail with an error naming ``n``."""
    time.sleep(seconds)
    raise ValueError(f"job {n} failed on purpose")
