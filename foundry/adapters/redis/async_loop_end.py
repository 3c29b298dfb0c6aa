"""``at_loop_end``: a clean-up run in an event loop just before the loop is closed.

``asyncio.run`` (and ``asyncio.Runner``, which asgiref's ``async_to_sync`` and Django's and
Flask's async views under WSGI run a request in) closes every async generator the loop started
(``loop.shutdown_asyncgens``) while the loop still runs, then closes the loop: a generator that
waits at its ``yield`` runs its ``finally`` there. A loop closed by hand without that step
(``new_event_loop`` ... ``close()``) runs none: its owner closes what it can without it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable


async def at_loop_end(clean_up: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    """Have ``clean_up()`` awaited in the running loop when it is shut down.

    Keep the generator returned: the loop holds it weakly, and one collected while its loop
    still runs is closed then (``clean_up`` runs early, in that loop). ``aclose()`` it to run
    ``clean_up`` now.
    """
    ending = _waiting(clean_up)
    await ending.asend(None)
    return ending


async def _waiting(clean_up: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await clean_up()
