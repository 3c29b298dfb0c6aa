"""Dispatch after commit, on every ``CommitHooks`` (memory, Django, SQLAlchemy on SQLite): a
job dispatched inside a transaction is sent once if it commits and never if it rolls back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.memory.async_queue import AsyncMemoryQueue
from foundry.adapters.memory.transactions import MemoryTransactions
from foundry.application.async_dispatcher import AsyncDispatcher
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError, InvalidJob, Job, JobState
from foundry.ports import EnqueueOutcome
from tests.commit_support import COMMIT_BACKENDS, CommitBackend

registry = JobRegistry()
T = TypeVar("T")


@registry.job(name="welcome", queue="mail")
def welcome(user_id: int) -> None:
    pass


class Rollback(Exception):
    """Raised to roll a transaction back."""


def rolled_back(db: CommitBackend, body: Callable[[], T]) -> T:
    """``body()``'s value, run in a transaction that then rolls back."""
    done: list[T] = []
    try:
        with db.atomic():
            done.append(body())
            raise Rollback
    except Rollback:
        return done[0]


async def sent_at_commit_and_rollback(
    db: CommitBackend,
    dispatcher: AsyncDispatcher,
    send: Callable[[], Awaitable[T]],
    inside: Callable[[], int],
) -> tuple[T, T, int]:
    """What ``send()`` returned in a transaction that commits and in one that rolls back,
    and ``inside()`` read before the commit; the dispatcher's sends flushed."""
    with db.atomic():
        sent = await send()
        seen = inside()
    dropped = await rolled_back_async(db, send)
    await dispatcher.flush()
    return sent, dropped, seen


async def rolled_back_async(db: CommitBackend, body: Callable[[], Awaitable[T]]) -> T:
    """``await body()``'s value, run in a transaction that then rolls back."""
    done: list[T] = []
    try:
        with db.atomic():
            done.append(await body())
            raise Rollback
    except Rollback:
        return done[0]


@pytest.fixture(params=list(COMMIT_BACKENDS))
def db(request: pytest.FixtureRequest) -> Iterator[CommitBackend]:
    yield from COMMIT_BACKENDS[request.param]()


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(ManualClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue, db: CommitBackend) -> Dispatcher:
    return Dispatcher(queue, registry, ManualClock(), commit_hooks=db.hooks, batches=queue)


def test_a_job_dispatched_in_a_transaction_is_sent_once_when_it_commits(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    with db.atomic():
        job_id = dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        inside = queue.stats("mail").ready

    record = queue.get(job_id)
    assert inside == 0
    assert record is not None
    assert record.state is JobState.READY
    assert queue.stats("mail").ready == 1


def test_a_transaction_that_rolls_back_sends_nothing(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    job_id = rolled_back(
        db, lambda: dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
    )

    assert queue.get(job_id) is None
    assert queue.queues() == []


def test_a_savepoint_that_rolls_back_drops_its_jobs_and_keeps_the_outer_ones(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    with db.atomic():
        kept = dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        dropped = rolled_back(
            db, lambda: dispatcher.dispatch(welcome, {"user_id": 2}, after_commit=True)
        )
        with db.atomic():
            released = dispatcher.dispatch(welcome, {"user_id": 3}, after_commit=True)

    assert queue.get(dropped) is None
    assert queue.get(kept) is not None
    assert queue.get(released) is not None
    assert queue.stats("mail").ready == 2


def test_outside_a_transaction_a_dispatch_after_commit_is_sent_at_once(
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    job_id = dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)

    assert queue.get(job_id) is not None


def test_dispatch_many_after_commit_sends_the_batch_in_order_at_the_commit(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    with db.atomic():
        ids = dispatcher.dispatch_many(
            [(welcome, {"user_id": n}) for n in range(3)], after_commit=True
        )
        inside = queue.queues()

    payloads = [queue.get(job_id).job.payload for job_id in ids]  # type: ignore[union-attr]
    assert inside == []
    assert payloads == [{"user_id": 0}, {"user_id": 1}, {"user_id": 2}]


def test_a_registrys_default_applies_unless_the_call_says_otherwise(
    queue: MemoryQueue, db: CommitBackend
) -> None:
    waiting = JobRegistry(after_commit=True)
    waiting.job(name="welcome", queue="mail")(welcome)
    dispatcher = Dispatcher(queue, waiting, ManualClock(), commit_hooks=db.hooks)

    deferred, now = rolled_back(
        db,
        lambda: (
            dispatcher.dispatch(welcome, {"user_id": 1}),
            dispatcher.dispatch(welcome, {"user_id": 2}, after_commit=False),
        ),
    )

    assert queue.get(deferred) is None
    assert queue.get(now) is not None


def test_a_bad_payload_is_refused_at_dispatch_not_at_the_commit(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    with db.atomic():
        with pytest.raises(InvalidJob):
            dispatcher.dispatch(welcome, {"user": 1}, after_commit=True)
        dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)

    assert queue.stats("mail").ready == 1


def test_a_batch_after_the_commit_is_sent_only_when_it_commits(
    dispatcher: Dispatcher, queue: MemoryQueue, db: CommitBackend
) -> None:
    rolled_back(
        db,
        lambda: dispatcher.batch([(welcome, {"user_id": 1})], after_commit=True, batch_id="gone"),
    )
    with db.atomic():
        kept = dispatcher.batch([(welcome, {"user_id": 2})], after_commit=True)
        assert queue.batches("mail") == []

    assert [record.id for record in queue.batches("mail")] == [kept]


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])  # Django's ORM is sync-only
def test_the_async_dispatcher_sends_after_the_commit_and_never_after_a_rollback(
    queue: MemoryQueue, name: str
) -> None:
    [db] = COMMIT_BACKENDS[name]()
    dispatcher = AsyncDispatcher(
        AsyncMemoryQueue(queue), registry, ManualClock(), commit_hooks=db.hooks
    )

    sent, dropped, inside = asyncio.run(
        sent_at_commit_and_rollback(
            db,
            dispatcher,
            lambda: dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True),
            lambda: queue.stats("mail").ready,
        )
    )

    assert inside == 0
    assert queue.get(sent) is not None
    assert queue.get(dropped) is None


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])
def test_the_async_dispatcher_sends_a_batch_after_the_commit_and_never_after_a_rollback(
    queue: MemoryQueue, name: str
) -> None:
    [db] = COMMIT_BACKENDS[name]()
    twin = AsyncMemoryQueue(queue)
    dispatcher = AsyncDispatcher(twin, registry, ManualClock(), commit_hooks=db.hooks, batches=twin)

    sent, _, inside = asyncio.run(
        sent_at_commit_and_rollback(
            db,
            dispatcher,
            lambda: dispatcher.batch([(welcome, {"user_id": 1})], after_commit=True),
            lambda: len(queue.batches("mail")),
        )
    )

    assert inside == 0
    assert [record.id for record in queue.batches("mail")] == [sent]


def test_a_commit_in_another_thread_hands_the_async_send_to_the_dispatching_loop(
    queue: MemoryQueue,
) -> None:
    transactions = MemoryTransactions()
    dispatcher = AsyncDispatcher(
        AsyncMemoryQueue(queue), registry, ManualClock(), commit_hooks=transactions
    )

    async def main() -> str:
        transaction = transactions.atomic()
        transaction.__enter__()
        job_id = await dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        await asyncio.to_thread(transaction.__exit__, None, None, None)
        await asyncio.sleep(0)  # the loop runs the send handed over from the thread
        await dispatcher.flush()
        return job_id

    job_id = asyncio.run(main())

    assert queue.get(job_id) is not None


def test_after_commit_without_commit_hooks_is_refused_naming_the_fix(queue: MemoryQueue) -> None:
    dispatcher = Dispatcher(queue, registry, ManualClock())

    with pytest.raises(ConfigurationError, match="commit_hooks=DjangoCommitHooks"):
        dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)

    assert queue.queues() == []


def test_a_send_that_fails_at_the_commit_is_logged_with_its_job_and_the_next_sends_are_made(
    db: CommitBackend, caplog: pytest.LogCaptureFixture
) -> None:
    class DownOnce(MemoryQueue):
        failed = False

        def enqueue(self, job: Job) -> EnqueueOutcome:
            if not DownOnce.failed:
                DownOnce.failed = True
                raise ConnectionError("queue down")
            return super().enqueue(job)

    queue = DownOnce(ManualClock())
    dispatcher = Dispatcher(queue, registry, ManualClock(), commit_hooks=db.hooks)
    caplog.set_level(logging.ERROR, logger="foundry")

    with db.atomic():
        lost = dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        sent = dispatcher.dispatch(welcome, {"user_id": 2}, after_commit=True)

    [record] = [r for r in caplog.records if r.name.startswith("foundry")]
    assert lost in record.getMessage()
    assert "the commit stands" in record.getMessage()
    assert queue.get(lost) is None
    assert queue.get(sent) is not None


def test_a_send_of_many_jobs_that_fails_at_the_commit_logs_every_one_of_them(
    db: CommitBackend, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(MemoryQueue):
        def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
            raise ConnectionError("queue down")

    queue = Down(ManualClock())
    dispatcher = Dispatcher(queue, registry, ManualClock(), commit_hooks=db.hooks)
    caplog.set_level(logging.ERROR, logger="foundry")

    with db.atomic():
        lost = dispatcher.dispatch_many(
            [(welcome, {"user_id": n}) for n in range(7)], after_commit=True
        )

    [record] = [r for r in caplog.records if r.name.startswith("foundry")]
    assert all(job_id in record.getMessage() for job_id in lost)
    assert "7 job(s) dispatched after commit were not sent" in record.getMessage()
    assert queue.queues() == []


def test_outside_a_transaction_a_send_that_fails_raises_to_the_dispatcher(
    db: CommitBackend,
) -> None:
    class Down(MemoryQueue):
        def enqueue(self, job: Job) -> EnqueueOutcome:
            raise ConnectionError("queue down")

    dispatcher = Dispatcher(Down(ManualClock()), registry, ManualClock(), commit_hooks=db.hooks)

    with pytest.raises(ConnectionError):
        dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)


def test_a_chain_is_sent_after_the_commit_as_a_dispatch_is(
    queue: MemoryQueue, db: CommitBackend
) -> None:
    waiting = JobRegistry(after_commit=True)
    waiting.job(name="welcome", queue="mail")(welcome)
    dispatcher = Dispatcher(queue, waiting, ManualClock(), commit_hooks=db.hooks, batches=queue)
    steps = [(welcome, {"user_id": 1}), (welcome, {"user_id": 2})]

    dropped = rolled_back(db, lambda: dispatcher.chain(steps))
    with db.atomic():
        sent = dispatcher.chain([*steps, dispatcher.build_batch([(welcome, {"user_id": 3})])])
        inside = queue.queues()
    at_once = rolled_back(db, lambda: dispatcher.chain(steps, after_commit=False))

    assert [queue.get(job_id) for job_id in dropped] == [None, None]
    assert inside == []
    assert [queue.get(job_id).state for job_id in sent[:2]] == [  # type: ignore[union-attr]
        JobState.READY,
        JobState.WAITING,
    ]
    assert queue.batch(sent[2]) is not None
    assert [queue.get(job_id) is not None for job_id in at_once] == [True, True]


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])
def test_the_async_dispatcher_sends_a_chain_after_the_commit(queue: MemoryQueue, name: str) -> None:
    [db] = COMMIT_BACKENDS[name]()
    twin = AsyncMemoryQueue(queue)
    dispatcher = AsyncDispatcher(twin, registry, ManualClock(), commit_hooks=db.hooks, batches=twin)
    steps = [(welcome, {"user_id": 1}), (welcome, {"user_id": 2})]

    sent, dropped, inside = asyncio.run(
        sent_at_commit_and_rollback(
            db,
            dispatcher,
            lambda: dispatcher.chain(steps, after_commit=True),
            lambda: queue.stats("mail").ready,
        )
    )

    assert inside == 0
    assert [queue.get(job_id) is not None for job_id in sent] == [True, True]
    assert [queue.get(job_id) for job_id in dropped] == [None, None]


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])
def test_outside_a_transaction_the_async_dispatcher_has_sent_the_job_when_the_call_returns(
    queue: MemoryQueue, name: str
) -> None:
    [db] = COMMIT_BACKENDS[name]()
    twin = AsyncMemoryQueue(queue)
    dispatcher = AsyncDispatcher(twin, registry, ManualClock(), commit_hooks=db.hooks, batches=twin)

    async def main() -> list[bool]:
        job_id = await dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        many = await dispatcher.dispatch_many([(welcome, {"user_id": 2})], after_commit=True)
        batch_id = await dispatcher.batch([(welcome, {"user_id": 3})], after_commit=True)
        return [
            queue.get(job_id) is not None,
            queue.get(many[0]) is not None,
            queue.batch(batch_id) is not None,
        ]

    assert asyncio.run(main()) == [True, True, True]


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])
def test_outside_a_transaction_the_async_dispatchers_failed_send_is_raised_to_the_caller(
    name: str,
) -> None:
    class Down(AsyncMemoryQueue):
        async def enqueue(self, job: object) -> object:  # type: ignore[override]
            raise ConnectionError("queue down")

    [db] = COMMIT_BACKENDS[name]()
    dispatcher = AsyncDispatcher(
        Down(MemoryQueue(ManualClock())), registry, ManualClock(), commit_hooks=db.hooks
    )

    with pytest.raises(ConnectionError, match="queue down"):
        asyncio.run(dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True))


def test_in_a_django_async_view_the_async_dispatcher_sends_after_commit_at_once(
    queue: MemoryQueue,
) -> None:
    [db] = COMMIT_BACKENDS["django"]()  # no atomic block can be open on the loop's thread
    dispatcher = AsyncDispatcher(
        AsyncMemoryQueue(queue), registry, ManualClock(), commit_hooks=db.hooks
    )

    job_id = asyncio.run(dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True))

    assert queue.get(job_id) is not None


def test_a_sqlalchemy_session_closed_without_commit_says_its_jobs_were_dropped(
    queue: MemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import create_engine, text  # noqa: PLC0415
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from foundry.adapters.sqlalchemy.commit import SqlAlchemyCommitHooks  # noqa: PLC0415

    session = Session(create_engine("sqlite://"))
    hooks = SqlAlchemyCommitHooks(lambda: session)
    dispatcher = Dispatcher(queue, registry, ManualClock(), commit_hooks=hooks)
    caplog.set_level(logging.WARNING, logger="foundry")
    session.execute(text("SELECT 1"))  # a read begins the session's transaction

    job_id = dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
    session.close()  # as a request's teardown does, with no commit

    [record] = [r for r in caplog.records if r.name.startswith("foundry")]
    assert queue.get(job_id) is None
    assert "closed without a commit" in record.getMessage()
    assert "after_commit=False" in record.getMessage()


def test_a_send_handed_over_at_a_commit_that_the_loops_end_cancels_is_logged(
    queue: MemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    class Remote(AsyncMemoryQueue):
        async def enqueue(self, job: Job) -> EnqueueOutcome:
            await asyncio.sleep(0.01)  # a round trip, as to Redis
            return await super().enqueue(job)

    [db] = COMMIT_BACKENDS["sqlalchemy"]()
    dispatcher = AsyncDispatcher(Remote(queue), registry, ManualClock(), commit_hooks=db.hooks)
    caplog.set_level(logging.ERROR, logger="foundry")

    async def main() -> str:
        with db.atomic():
            return await dispatcher.dispatch(welcome, {"user_id": 1}, after_commit=True)
        # returns without dispatcher.flush(): asyncio.run cancels the pending send

    job_id = asyncio.run(main())

    [record] = [r for r in caplog.records if r.name.startswith("foundry")]
    assert queue.get(job_id) is None
    assert job_id in record.getMessage()
    assert "flush()" in record.getMessage()


@pytest.mark.parametrize("name", ["memory", "sqlalchemy"])
def test_a_commit_after_the_dispatching_loop_closed_stands_and_logs_every_unsent_job(
    queue: MemoryQueue, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    [db] = COMMIT_BACKENDS[name]()
    dispatcher = AsyncDispatcher(
        AsyncMemoryQueue(queue), registry, ManualClock(), commit_hooks=db.hooks
    )
    caplog.set_level(logging.ERROR, logger="foundry")
    transaction = db.atomic()
    transaction.__enter__()

    async def main() -> list[str]:
        return await dispatcher.dispatch_many(
            [(welcome, {"user_id": n}) for n in range(7)], after_commit=True
        )

    job_ids = asyncio.run(main())  # the loop closes with the transaction still open
    transaction.__exit__(None, None, None)  # the commit: no error reaches the committer

    [record] = [r for r in caplog.records if r.name.startswith("foundry")]
    assert all(job_id in record.getMessage() for job_id in job_ids)
    assert "event loop" in record.getMessage()
    assert "the commit stands" in record.getMessage()
    assert queue.queues() == []
