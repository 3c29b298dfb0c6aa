"""Where the ``CommitHooks`` implementations join the dispatch-after-commit suite.

Each backend gives its hooks and ``atomic()``: a transaction of its own kind (a savepoint when
one is open) that commits when its block ends and rolls back when the block raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import attrs
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from foundry.adapters.memory.transactions import MemoryTransactions
from foundry.ports import CommitHooks


@attrs.frozen
class CommitBackend:
    """One database's commit hooks and its transactions."""

    hooks: CommitHooks
    atomic: Callable[[], AbstractContextManager[object]]


def _memory() -> Iterator[CommitBackend]:
    transactions = MemoryTransactions()
    yield CommitBackend(transactions, transactions.atomic)


def _django() -> Iterator[CommitBackend]:
    from django.db import transaction  # noqa: PLC0415 - only once Django is configured

    from foundry.adapters.django.commit import DjangoCommitHooks  # noqa: PLC0415

    configure_django()
    yield CommitBackend(DjangoCommitHooks(), transaction.atomic)


def configure_django() -> None:
    """Django on an in-memory SQLite database, once per test process."""
    import django  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


def _sqlalchemy() -> Iterator[CommitBackend]:
    from foundry.adapters.sqlalchemy.commit import SqlAlchemyCommitHooks  # noqa: PLC0415

    session = Session(create_engine("sqlite://"))

    @contextmanager
    def atomic() -> Iterator[object]:
        begin = session.begin_nested if session.in_transaction() else session.begin
        with begin() as transaction:
            yield transaction

    yield CommitBackend(SqlAlchemyCommitHooks(lambda: session), atomic)
    session.close()


COMMIT_BACKENDS: dict[str, Callable[[], Iterator[CommitBackend]]] = {
    "memory": _memory,
    "django": _django,
    "sqlalchemy": _sqlalchemy,
}
