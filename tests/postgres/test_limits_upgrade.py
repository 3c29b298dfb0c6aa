"""Limits across the upgrade to migrations 0014 to 0016: what the release before them left (jobs
delayed to a rate turn of their own, a job a freed slot made ready, unmarked) keeps its
promises after them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import connect, open_pool
from foundry.adapters.postgres.migrator import Migration, Migrator, load_migrations
from foundry.adapters.postgres.queue import PostgresQueue
from foundry.domain import Job, Limit, Rate
from foundry.ports import ClaimRequest
from tests.postgres_server import unique_name

pytestmark = pytest.mark.postgres

CLAIM = ClaimRequest(["default"], lease=timedelta(seconds=30), limit=10)
BEFORE_LIMITS = tuple(m for m in load_migrations() if m.version < 14)

Closing = list[Callable[[], None]]


@pytest.fixture
def settings(postgres_url: str) -> PostgresSettings:
    return PostgresSettings(postgres_url, schema=unique_name("s_"), pool_size=2)


def _migrate(settings: PostgresSettings, migrations: tuple[Migration, ...] = ()) -> None:
    Migrator(partial(connect, settings), settings.schema, migrations or None).migrate()


def _claim(queue: PostgresQueue) -> list[str]:
    return [lease.job_id for lease in queue.claim(CLAIM)]


def test_a_job_a_freed_slot_made_ready_before_the_upgrade_passes_the_slot_on_when_cancelled(
    settings: PostgresSettings, postgres_closing: Closing
) -> None:
    _migrate(settings, BEFORE_LIMITS)  # the schema's functions are the previous release's
    queue = PostgresQueue(open_pool(settings, name="foundry-tests"), settings)
    postgres_closing.append(queue.close)
    limit = Limit("k", concurrency=1)
    queue.enqueue_many([Job("t", id=f"j{n}", limit=limit) for n in range(3)])
    [lease] = queue.claim(CLAIM)  # j1 and j2 are parked
    queue.complete(lease)  # j1 is ready, for the slot j0 gave back

    _migrate(settings)
    queue.cancel("j1")

    assert _claim(queue) == ["j2"]


def test_jobs_delayed_to_a_turn_of_their_own_before_the_upgrade_line_up_and_keep_the_rate(
    settings: PostgresSettings, postgres_closing: Closing, clock: ManualClock
) -> None:
    _migrate(settings, BEFORE_LIMITS)
    queue = PostgresQueue(open_pool(settings, name="foundry-tests"), settings, clock=clock)
    postgres_closing.append(queue.close)
    limit = Limit("k", rate=Rate(1, timedelta(hours=1)))
    queue.enqueue_many([Job("t", id=f"j{n}", limit=limit) for n in range(4)])
    started = _claim(queue)  # j1..j3 delayed to turns of their own, an hour apart

    _migrate(settings)
    queue.enqueue(Job("t", id="fresh", limit=limit))
    at_once = _claim(queue)
    queue.cancel("j1")
    queue.cancel("j2")
    clock.advance(timedelta(hours=1))
    an_hour_on = _claim(queue), _claim(queue)
    clock.advance(timedelta(hours=1))

    assert (started, at_once) == (["j0"], [])
    assert an_hour_on == (["j3"], [])
    assert _claim(queue) == ["fresh"]
