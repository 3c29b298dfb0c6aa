"""(d) millisecond and server-clock edges, (e) Redis restarts under a live adapter,
(f) the self-check, and bad input refused before anything is sent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.health import log_report
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import InvalidJob, Job, LeaseTiming, QueueUnavailable, RunAt
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix
from tests.redis_server import RedisServer

LEASE = timedelta(seconds=30)
US = timedelta(microseconds=1)

pytestmark = pytest.mark.redis


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Foundry's records at INFO and above, in ``caplog``."""
    caplog.set_level(logging.INFO, logger="foundry")
    return caplog


def _fast_settings(url: str) -> RedisSettings:
    return RedisSettings(
        url=url,
        retries=2,
        connect_timeout=timedelta(milliseconds=200),
        socket_timeout=timedelta(seconds=2),
        backoff_base=timedelta(milliseconds=5),
        backoff_cap=timedelta(milliseconds=20),
    )


# -- (d) time ---------------------------------------------------------------------------------


def test_a_run_time_between_two_milliseconds_waits_for_the_later_one(redis_url: str) -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=unique_prefix(), clock=clock)
    queue.enqueue(Job("t", id="a", schedule=RunAt(clock.now() + timedelta(milliseconds=1) - US)))

    early = queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(timedelta(milliseconds=1))
    on_time = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert early == []
    assert [lease.job_id for lease in on_time] == ["a"]


def test_without_a_clock_the_scripts_use_the_server_time(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = RedisQueue(client, prefix=unique_prefix())
    seconds, micros = client.time()
    server_now = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)
    queue.enqueue(Job("t", id="future", schedule=RunAt(server_now + timedelta(days=1))))
    queue.enqueue(Job("t", id="past", schedule=RunAt(server_now - timedelta(days=1))))

    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))

    assert [lease.job_id for lease in leases] == ["past"]
    assert server_now < leases[0].deadline < server_now + LEASE + timedelta(minutes=1)


def test_a_claim_may_wait_longer_than_the_clients_socket_timeout(redis_url: str) -> None:
    timing = LeaseTiming(LEASE, reply_timeout_cap=timedelta(milliseconds=200))
    settings = attrs.evolve(_fast_settings(redis_url), socket_timeout=timing.reply_timeout)
    queue = RedisQueue(connect(settings), prefix=unique_prefix(), block_limit=timing.block_limit)

    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, wait=timedelta(milliseconds=600)))

    assert leases == []


# -- (e) restarts -----------------------------------------------------------------------------


def test_the_adapter_carries_on_across_redis_restarts_without_being_rebuilt(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r", clock=ManualClock())
    queue.enqueue_many([Job("t", id="a"), Job("t", id="b")])

    server.restart()
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    server.restart()
    queue.complete(lease)
    stats = queue.stats("default")

    assert lease.job_id == "a"
    assert (stats.ready, stats.completed) == (1, 1)
    assert not [r for r in logs.records if r.levelno >= logging.CRITICAL]


def test_a_redis_that_lost_its_data_is_reported_as_critical(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()  # no persistence: a restart loses everything
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r", clock=ManualClock())
    queue.enqueue(Job("t", id="a"))

    server.restart()
    leases = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert leases == []
    critical = [r.getMessage() for r in logs.records if r.levelno >= logging.CRITICAL]
    assert any("lost the data of queue default" in message for message in critical)


def test_lost_data_is_logged_once_then_once_a_minute_while_it_lasts_and_its_end_once(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    clock = ManualClock()
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r", clock=clock)
    queue.enqueue(Job("t", id="a"))
    server.restart()
    idle = ClaimRequest(["default"], lease=LEASE)

    for _ in range(30):  # an idle worker claims several times a second
        queue.claim(idle)
        clock.advance(timedelta(seconds=1))
    critical_in_30_s = _messages(logs, logging.CRITICAL)
    clock.advance(timedelta(seconds=30))
    queue.claim(idle)
    queue.enqueue(Job("t", id="b"))
    queue.claim(idle)
    queue.claim(idle)

    assert len(critical_in_30_s) == 1
    assert len(_messages(logs, logging.CRITICAL)) == 2
    assert "still missing" in _messages(logs, logging.CRITICAL)[1]
    assert len([m for m in _messages(logs, logging.WARNING) if "holds data again" in m]) == 1


def _messages(logs: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in logs.records if r.levelno == level]


def test_an_unreachable_redis_raises_queue_unavailable_with_the_job_id_and_leaves_logging(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    queue = RedisQueue(connect(_fast_settings(server.url)), prefix="r", clock=ManualClock())
    queue.enqueue(Job("t", id="before"))
    server.kill()

    with pytest.raises(QueueUnavailable) as first:
        queue.enqueue(Job("t", id="a"))
    with pytest.raises(QueueUnavailable):
        queue.claim(ClaimRequest(["default"], lease=LEASE))
    server.start()
    outcome = queue.enqueue(Job("t", id="a"))

    messages = [r.getMessage() for r in logs.records]
    assert first.value.job_id == "a"
    assert isinstance(first.value.__cause__, redis.ConnectionError)
    assert outcome.job_id == "a"
    # The adapter only raises; the pool logs an outage once each way (test_supervisor).
    assert not [m for m in messages if m.startswith("Redis") and "lost the data" not in m]


# -- (f) self-check ---------------------------------------------------------------------------


def test_the_self_check_warns_loudly_about_eviction_and_missing_persistence(
    redis_server_factory: Callable[..., RedisServer], logs: pytest.LogCaptureFixture
) -> None:
    server = redis_server_factory()
    server.client().config_set("maxmemory-policy", "allkeys-lru")
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r")

    report = queue.check()  # the report; a worker logs it once (log_report)
    log_report(report)

    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert report.maxmemory_policy == "allkeys-lru"
    assert len(warnings) == len(report.warnings)
    assert not report.aof_enabled
    assert any("noeviction" in w and "allkeys-lru" in w for w in warnings)
    assert any("appendonly" in w for w in warnings)


def test_the_self_check_of_a_safe_redis_has_no_warnings(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(appendonly=True)
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r")

    report = queue.check()

    assert (report.maxmemory_policy, report.aof_enabled, report.warnings) == (
        "noeviction",
        True,
        (),
    )


def test_the_self_check_names_function_libraries_left_by_other_releases(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(appendonly=True)
    old = "#!lua name=foundry_0ld\nredis.register_function('claim_0ld', function() return 1 end)"
    server.client().function_load(old)
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r")

    report = queue.check()
    again = queue.check()  # its own library, loaded by the first check, is not named

    [warning] = report.warnings
    assert "1 Foundry function library of other releases" in warning
    assert "(foundry_0ld)" in warning
    assert "FUNCTION DELETE" in warning
    assert again.warnings == report.warnings


def test_the_self_check_reads_everything_even_where_config_is_refused(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.client().acl_setuser("default", enabled=True, commands=["-config"])  # as managed Redis
    queue = RedisQueue(connect(RedisSettings(url=server.url)), prefix="r")

    report = queue.check()

    assert report.rdb_save == "unknown (CONFIG GET refused)"
    assert report.maxmemory_policy == "noeviction"
    assert report.version.split(".")[0].isdigit()


# -- bad input --------------------------------------------------------------------------------


def test_an_oversized_payload_is_refused_before_anything_is_sent() -> None:
    queue = RedisQueue(redis.Redis(port=1), prefix="r", max_payload_bytes=1024)

    with pytest.raises(InvalidJob, match="limit is 1024"):
        queue.enqueue(Job("t", {"blob": "x" * 2000}))
    with pytest.raises(InvalidJob, match="1024"):
        queue.enqueue_many([Job("t"), Job("t", {"blob": "x" * 2000})])


def test_a_payload_that_is_not_json_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidJob, match="payload"):
        Job("t", {"when": datetime.now(UTC)})


def test_an_invalid_claim_token_is_refused_before_anything_is_sent() -> None:
    queue = RedisQueue(redis.Redis(port=1), prefix="r")

    with pytest.raises(InvalidJob, match="claim_token"):
        queue.claim(ClaimRequest(["default"], lease=LEASE, claim_token="has,comma"))
