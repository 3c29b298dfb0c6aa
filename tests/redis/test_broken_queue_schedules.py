"""A queue whose schedule keys Redis refuses (a key of the wrong type) stops only its own
schedules: the scheduler names it once, and the other queues' schedules keep firing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from starlette.testclient import TestClient

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.schedules.scheduler import Scheduler
from foundry.domain import QueuesBroken
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.entrypoints.settings import Settings
from foundry.ports import Firing
from tests.backends import unique_prefix
from tests.cli_support import container_for, invoke

pytestmark = pytest.mark.redis
MINUTE = timedelta(minutes=1)


def _app() -> foundry.JobRegistry:
    registry = foundry.JobRegistry()

    @registry.job(name="beat")
    def beat() -> None:
        return None

    for queue in ("a", "b", "c"):
        registry.schedule(f"beat-{queue}", "beat", every=MINUTE, queue=queue)
    return registry


#: The app ``foundry schedules list --app`` loads here.
registry = _app()


def _queue(redis_url: str, clock: ManualClock) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=unique_prefix("bs"), clock=clock)


def _break(queue: RedisQueue, name: str, key: str) -> None:
    client = queue._runner.client
    client.delete(f"{queue._keys.prefix}:{{{name}}}:{key}")
    client.set(f"{queue._keys.prefix}:{{{name}}}:{key}", "x")


def _fired(queue: RedisQueue, registry: foundry.JobRegistry, clock: ManualClock) -> list[str]:
    tick = clock.now().replace(second=0, microsecond=0)
    return [
        schedule.queue
        for schedule in registry.schedules()
        if queue.get(schedule.job_id(tick), schedule.queue) is not None
    ]


def test_a_queue_whose_schedules_redis_refuses_stops_only_its_own_and_is_named_once(
    redis_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(redis_url, clock)
    registry = _app()
    scheduler = Scheduler(queue, registry)
    scheduler.step()  # synced: each waits for the first minute
    _break(queue, "b", "sched:due")
    clock.advance(MINUTE)

    with caplog.at_level(logging.INFO, "foundry"):
        scheduler.step()
        scheduler.step()

    assert _fired(queue, registry, clock) == ["a", "c"]
    broken = [r for r in caplog.records if "'b' is broken" in r.getMessage()]
    assert len(broken) == 1
    assert broken[0].levelno == logging.ERROR
    assert "the backend failed" not in caplog.text


class Seconds:
    """A monotonic clock the test moves (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_broken_queue_is_logged_again_once_a_minute_while_it_lasts(
    redis_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(redis_url, clock)
    monotonic = Seconds()
    scheduler = Scheduler(queue, _app(), monotonic=monotonic)
    scheduler.step()
    _break(queue, "b", "sched:due")
    logged_at = []

    with caplog.at_level(logging.INFO, "foundry"):
        for later in (0.0, 1.0, 30.0, 59.9, 60.0, 61.0, 119.0, 120.0):
            monotonic.now = 1000.0 + later
            caplog.clear()
            scheduler.step()
            if "'b' is broken" in caplog.text:
                logged_at.append(later)

    assert logged_at == [0.0, 60.0, 120.0]


def test_a_firing_its_queue_refuses_is_answered_refused_and_the_others_fire(
    redis_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(redis_url, clock)
    registry = _app()
    scheduler = Scheduler(queue, registry)
    scheduler.step()
    _break(queue, "b", "meta")  # its schedules are read, firing them is refused
    clock.advance(MINUTE)

    with caplog.at_level(logging.INFO, "foundry"):
        scheduler.step()
        first = [queue.stats(name).ready for name in ("a", "c")]
        queue._runner.client.delete(f"{queue._keys.prefix}:{{b}}:meta")
        scheduler.step()

    assert first == [1, 1]
    assert [queue.stats(name).ready for name in ("a", "b", "c")] == [1, 1, 1]
    assert len([r for r in caplog.records if "'b' is broken" in r.getMessage()]) == 1
    assert "queue 'b' answers again" in caplog.text


@pytest.mark.parametrize("url", ["redis_url", "redis_cluster_url"])
def test_the_schedule_port_names_each_broken_queue_and_serves_the_others(
    request: pytest.FixtureRequest, url: str, clock: ManualClock
) -> None:
    client = connect(RedisSettings(url=request.getfixturevalue(url)))
    queue = RedisQueue(client, prefix=unique_prefix("bs"), clock=clock)
    registry = _app()
    Scheduler(queue, registry).sync(redefine=True)
    _break(queue, "b", "sched:due")
    _break(queue, "c", "sched:rec")
    clock.advance(MINUTE)

    poll = queue.poll(["a", "b", "c"], 10)
    [due] = poll.due
    fired = queue.fire(
        [
            Firing(name, on, due.definition, due.due_from, due.due_from + MINUTE)
            for name, on in (("beat-a", "a"), ("beat-c", "c"))
        ]
    )
    listing = queue.schedule_states()
    with pytest.raises(QueuesBroken) as syncing:
        Scheduler(queue, registry).sync(redefine=False)

    assert [item.queue for item in poll.due] == ["a"]
    assert [error.queue for error in poll.broken] == ["b", "c"]
    assert [(answer.applied, answer.refused is None) for answer in fired] == [
        (True, True),
        (False, False),
    ]
    assert [state.name for state in listing.states] == ["beat-a"]
    assert [error.queue for error in listing.broken] == ["b", "c"]
    assert [error.queue for error in syncing.value.broken] == ["c"]  # b's due set unread


@pytest.fixture
def b_schedules_broken(redis_url: str, clock: ManualClock) -> Iterator[RedisQueue]:
    """The three queues' schedules stored, then ``b``'s due set made a string."""
    queue = _queue(redis_url, clock)
    Scheduler(queue, _app()).sync(redefine=True)
    _break(queue, "b", "sched:due")
    yield queue
    queue._runner.client.close()


def test_listing_the_schedules_shows_the_other_queues_and_names_the_broken_one(
    b_schedules_broken: RedisQueue,
) -> None:
    listing = b_schedules_broken.schedule_states()

    assert [(state.name, state.queue) for state in listing.states] == [
        ("beat-a", "a"),
        ("beat-c", "c"),
    ]
    [error] = listing.broken
    assert error.queue == "b"
    assert "{b}:sched:due is a string, not a zset" in str(error)


def test_schedules_list_shows_the_other_queues_and_exits_1_naming_the_broken_one(
    b_schedules_broken: RedisQueue, clock: ManualClock
) -> None:
    container = container_for(b_schedules_broken, clock, Settings())

    stored = invoke(container, "schedules", "list")
    declared = invoke(container, "schedules", "list", "--app", f"{__name__}:registry")

    assert stored.exit_code == 1, stored.output
    assert "beat-a" in stored.stdout
    assert "beat-c" in stored.stdout
    assert "beat-b" not in stored.stdout
    [line] = [line for line in stored.stderr.splitlines() if "is broken" in line]
    assert "queue 'b' is broken" in line
    assert "{b}:sched:due is a string, not a zset" in line
    assert "fix or delete the key named" in line
    assert "its schedules are not listed" in line
    assert declared.exit_code == 1, declared.output
    [row] = [line for line in declared.stdout.splitlines() if "beat-b" in line]
    assert "its queue is broken" in row
    assert "new (no scheduler ran yet)" not in row


def test_the_schedules_page_lists_the_other_queues_and_warns_of_the_broken_one(
    b_schedules_broken: RedisQueue, clock: ManualClock
) -> None:
    app = create_app(
        b_schedules_broken,
        b_schedules_broken,
        b_schedules_broken,
        clock,
        DashboardConfig(GuardConfig(token=None), background=False),
        batches=b_schedules_broken,
    )

    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        listed = client.get("/api/schedules")
        page = client.get("/schedules")

    assert listed.status_code == 200, listed.text
    assert [s["name"] for s in listed.json()["schedules"]] == ["beat-a", "beat-c"]
    [broken] = listed.json()["broken"]
    assert broken["queue"] == "b"
    assert "{b}:sched:due is a string, not a zset" in broken["broken"]
    assert page.status_code == 200, page.text
    assert "<code>beat-a</code>" in page.text
    assert "<code>beat-c</code>" in page.text
    assert 'data-broken="b"' in page.text
    assert "{b}:sched:due is a string, not a zset" in page.text
