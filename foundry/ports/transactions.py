"""Work that must wait for a database transaction: the port dispatch-after-commit uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class CommitHooks(Protocol):
    """Runs callbacks once the current database transaction has committed.

    * Inside a transaction, ``callback`` runs once, after the outermost transaction commits,
      in the order the callbacks were given; never if that transaction (or the savepoint it
      was given in) rolls back.
    * Outside any transaction (autocommit), ``callback`` runs at once.
    * What a callback raises reaches whoever committed (the framework's commit call); the
      transaction has committed by then.
    """

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the current transaction commits (now, outside one)."""
        ...
