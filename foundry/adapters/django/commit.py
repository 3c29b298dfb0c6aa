"""DjangoCommitHooks: ``CommitHooks`` over ``django.db.transaction.on_commit``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from django.db import transaction


class DjangoCommitHooks:
    """Callbacks after the commit of the current ``atomic`` block of database ``using``
    (Django's default database unless named). Django drops those given inside a savepoint
    that rolls back, and runs one at once outside any ``atomic`` block (autocommit), as in
    an async view: the ORM is sync-only on the event loop's thread, so no block is open
    there."""

    def __init__(self, using: str | None = None) -> None:
        self._using = using

    def on_commit(self, callback: Callable[[], None]) -> None:
        """``transaction.on_commit(callback, using=...)``; at once on an event loop."""
        if _on_event_loop():
            callback()
            return
        transaction.on_commit(callback, using=self._using)


def _on_event_loop() -> bool:
    """Whether Django refuses its ORM here (``async_unsafe``): a running event loop, unless
    ``DJANGO_ALLOW_ASYNC_UNSAFE`` lets it run."""
    if os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
