"""DjangoCommitHooks: ``CommitHooks`` over ``django.db.transaction.on_commit``."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction


class DjangoCommitHooks:
    """Callbacks after the commit of the current ``atomic`` block of database ``using``
    (Django's default database unless named). Django drops those given inside a savepoint
    that rolls back, and runs one at once outside any ``atomic`` block (autocommit)."""

    def __init__(self, using: str | None = None) -> None:
        self._using = using

    def on_commit(self, callback: Callable[[], None]) -> None:
        """``transaction.on_commit(callback, using=...)``."""
        transaction.on_commit(callback, using=self._using)
