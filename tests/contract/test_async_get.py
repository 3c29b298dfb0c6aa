"""The asyncio port's ``get`` reads what the sync port shows, on every queue backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, JobState, RunAfter
from foundry.ports import ClaimRequest, JobRecord
from tests.backends import LEASE, Queue, QueueBackend, job

Get = Callable[..., JobRecord | None]


@pytest.fixture
def read_async(
    queue_backend: QueueBackend, queue: Queue, clock: ManualClock, request: pytest.FixtureRequest
) -> Get:
    """``get`` through the async twin of ``queue``, run to completion."""
    twin = queue_backend.twin(request.getfixturevalue, clock, queue)

    def get(job_id: str, where: str | None = None) -> JobRecord | None:
        async def read() -> JobRecord | None:
            try:
                return await twin.get(job_id, where)
            finally:
                await twin.aclose()

        return asyncio.run(read())

    return get


def test_async_get_shows_the_record_the_sync_get_shows_in_every_state(
    queue: Queue, clock: ManualClock, read_async: Get
) -> None:
    get = read_async
    queue.enqueue_many(
        [
            job(id="ready", queue="one"),
            job(id="later", queue="two", schedule=RunAfter(timedelta(minutes=1))),
            job(id="running", queue="one"),
            job(id="done", queue="one"),
            job(id="buried", queue="one"),
        ]
    )
    leases = queue.claim(ClaimRequest(["one"], lease=LEASE, limit=4))
    by_id = {lease.job_id: lease for lease in leases}
    queue.complete(by_id["done"], {"rows": 3})
    queue.fail(by_id["buried"], ErrorInfo("Boom", "no"), Dead("boom"))

    records = {job_id: get(job_id) for job_id in ("ready", "later", "running", "done", "buried")}

    for job_id, record in records.items():
        assert record == queue.get(job_id), job_id
    assert [records["done"].result, records["buried"].state] == [  # type: ignore[union-attr]
        {"rows": 3},
        JobState.DEAD,
    ]
    assert get("later", "two") == queue.get("later", "two")


def test_async_get_of_an_unknown_job_or_another_queue_is_none(
    queue: Queue, read_async: Get
) -> None:
    get = read_async
    queue.enqueue(job(id="a", queue="one"))

    assert get("nope") is None
    assert get("a", "two") is None
    assert get("a", "one") == queue.get("a", "one")
