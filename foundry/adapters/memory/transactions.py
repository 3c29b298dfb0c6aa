"""MemoryTransactions: ``CommitHooks`` over transactions a test opens (``atomic()``), the fake
the dispatch-after-commit tests use where no database is wanted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class MemoryTransactions:
    """Nested transactions in memory: ``with transactions.atomic():`` commits when its block
    ends and rolls back when it raises; an inner block is a savepoint."""

    def __init__(self) -> None:
        self._open: list[list[Callable[[], None]]] = []

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction (a savepoint inside another): committed unless the block raises."""
        self._open.append([])
        try:
            yield
        except BaseException:
            self._open.pop()
            raise
        callbacks = self._open.pop()
        if self._open:
            self._open[-1].extend(callbacks)
            return
        for callback in callbacks:
            callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the outermost open transaction commits (now, outside one)."""
        if self._open:
            self._open[-1].append(callback)
        else:
            callback()
