"""SqlAlchemyCommitHooks: ``CommitHooks`` over a SQLAlchemy ``Session``'s transaction events.

Callbacks are kept per ``SessionTransaction`` in the session's ``info``. When a transaction
ends, the event just before its end says how: ``after_commit`` (a savepoint's release fires
it too) or ``after_rollback``. A committed savepoint hands its callbacks to its parent, the
committed outermost transaction runs them, anything else (rollback, ``close()`` of an open
transaction) drops them; a close without a commit or a rollback says so in a warning, as
the request then most likely forgot to commit.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

_PENDING = "foundry.after_commit"
_COMMITTED = "foundry.committed"


class SqlAlchemyCommitHooks:
    """Callbacks after the commit of the current transaction of ``session()``'s session.

    ``session`` returns the session in use now: a ``scoped_session`` (Flask-SQLAlchemy's
    ``db.session``) or ``lambda: session``; an ``AsyncSession`` too (``lambda: session``, an
    ``async_scoped_session``), whose commit is its ``sync_session``'s. A session that has not
    begun a transaction (no statement, ``add`` or ``begin()`` since its last commit) is in
    none: the callback runs at once, as Django's does outside ``atomic``.
    """

    def __init__(self, session: Callable[[], Session | AsyncSession]) -> None:
        self._session = session

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Keep ``callback`` for the session's innermost transaction; run it now if none."""
        session = _sync(self._session())
        if not session.in_transaction():
            callback()
            return
        _listen(session)
        transaction = session.get_nested_transaction() or session.get_transaction()
        pending: dict[SessionTransaction | None, list[Callable[[], None]]] = session.info[_PENDING]
        pending.setdefault(transaction, []).append(callback)


def _sync(session: Session | AsyncSession) -> Session:
    """The ``Session`` whose events say how the transaction ends (an ``AsyncSession``'s
    ``sync_session``: SQLAlchemy fires no events on the asyncio proxy)."""
    if "sqlalchemy.ext.asyncio" in sys.modules:
        from sqlalchemy.ext.asyncio import AsyncSession  # noqa: PLC0415 - loaded by the app

        if isinstance(session, AsyncSession):
            return session.sync_session
    return cast(Session, session)


def _listen(session: Session) -> None:
    if _PENDING in session.info:
        return
    session.info[_PENDING] = {}
    event.listen(session, "after_commit", _committed)
    event.listen(session, "after_rollback", _rolled_back)
    event.listen(session, "after_transaction_end", _ended)


def _committed(session: Session) -> None:
    session.info[_COMMITTED] = True


def _rolled_back(session: Session) -> None:
    session.info[_COMMITTED] = False


def _ended(session: Session, transaction: SessionTransaction) -> None:
    committed = session.info.pop(_COMMITTED, None)
    pending: dict[Any, list[Callable[[], None]]] = session.info[_PENDING]
    callbacks = pending.pop(transaction, [])
    if committed is None and callbacks:
        log.warning(
            "%d dispatch(es) after commit dropped: the session's transaction was closed "
            "without a commit (a read begins one); commit it, or dispatch with "
            "after_commit=False where the request writes nothing",
            len(callbacks),
        )
    if not committed or not callbacks:
        return
    if transaction.parent is not None:
        pending.setdefault(transaction.parent, []).extend(callbacks)
        return
    for callback in callbacks:
        callback()
