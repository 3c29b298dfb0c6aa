"""Limits as declared and dispatched: rates parsed, bad input refused, turns at a rate."""

from __future__ import annotations

from datetime import timedelta

import pytest

import foundry
from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.domain import InvalidJob, Limit, Rate, rate_turn


@pytest.mark.parametrize(
    ("text", "count", "per"),
    [
        ("100/m", 100, timedelta(minutes=1)),
        ("20/s", 20, timedelta(seconds=1)),
        ("5/10s", 5, timedelta(seconds=10)),
        ("1000/hour", 1000, timedelta(hours=1)),
        (" 3 / 2 days ", 3, timedelta(days=2)),
        ("10/sec", 10, timedelta(seconds=1)),
    ],
)
def test_a_rate_reads_count_slash_unit(text: str, count: int, per: timedelta) -> None:
    assert Rate.parse(text) == Rate(count, per)


@pytest.mark.parametrize("text", ["ten/sec", "5/ms", "5/0s", "0/s", "/s", "5", "5/fortnight"])
def test_a_malformed_rate_is_refused_naming_the_form(text: str) -> None:
    with pytest.raises(InvalidJob, match="rate_limit"):
        Rate.parse(text)


def test_an_interval_is_rounded_up_never_faster_than_stated() -> None:
    assert Rate.parse("3/s").interval_ms == 334


def test_a_limit_needs_a_concurrency_or_a_rate_and_a_positive_concurrency() -> None:
    with pytest.raises(InvalidJob, match="concurrency=, rate_limit="):
        Limit("k")
    with pytest.raises(InvalidJob, match="concurrency"):
        Limit("k", concurrency=-1)
    with pytest.raises(InvalidJob, match="limit_key"):
        Limit("", concurrency=1)


def test_a_rate_turn_waits_for_the_keys_next_start_and_a_held_turn_keeps_its_schedule() -> None:
    rate = Rate(2, timedelta(seconds=1))  # 500 ms
    start_now, next_ms = rate_turn(rate, holds_turn=False, next_ms=0, now_ms=0)
    wait, _ = rate_turn(rate, holds_turn=False, next_ms=next_ms, now_ms=0)

    late, next_ms = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=620)
    on_time, next_ms = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=1000)
    early, _ = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=1400)

    assert (start_now, wait) == (None, 500)
    assert (late, on_time, early) == (None, None, 1500)  # 120 ms late cost the next turn nothing


def test_rate_turns_after_claims_more_than_an_interval_late_lose_only_the_excess() -> None:
    rate = Rate(2, timedelta(seconds=1))  # 500 ms
    _, next_ms = rate_turn(rate, holds_turn=False, next_ms=0, now_ms=0)

    late = 2000  # the turn at 500 came and went before the next claim
    first, next_ms = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=late)
    second, next_ms = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=late)
    third, _ = rate_turn(rate, holds_turn=True, next_ms=next_ms, now_ms=late)

    assert (first, second, third) == (None, None, 2500)


def test_after_a_quiet_spell_the_second_start_waits_a_full_interval() -> None:
    rate = Rate(2, timedelta(seconds=1))  # 500 ms

    first, next_ms = rate_turn(rate, holds_turn=False, next_ms=500, now_ms=9000)
    second, _ = rate_turn(rate, holds_turn=False, next_ms=next_ms, now_ms=9000)

    assert (first, second) == (None, 9500)


def _registry() -> foundry.JobRegistry:
    return foundry.JobRegistry()


def test_a_malformed_rate_at_declaration_is_refused() -> None:
    with pytest.raises(InvalidJob, match="'ten/sec' is not a rate"):
        _registry().job(rate_limit="ten/sec")(lambda tenant_id: None)


def test_a_negative_concurrency_at_declaration_is_refused() -> None:
    with pytest.raises(InvalidJob, match="concurrency"):
        _registry().job(concurrency=-1)(lambda tenant_id: None)


def test_a_key_template_naming_an_argument_the_handler_lacks_is_refused_at_declaration() -> None:
    def send(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match="names 'tenant', which handler"):
        _registry().job(concurrency=2, limit_key="t:{tenant}")(send)


def test_a_key_template_the_payload_cannot_fill_is_refused_at_dispatch() -> None:
    registry = _registry()

    @registry.job(concurrency=2, limit_key="tenant:{tenant_id}")
    def send(tenant_id: int = 0, **extra: object) -> None:
        pass

    clock = ManualClock()
    dispatcher = foundry.Dispatcher(MemoryQueue(clock), registry, clock)

    with pytest.raises(InvalidJob, match="limit_key"):
        dispatcher.dispatch(send, {"other": 1}, limit_key="user:{user_id}")
    with pytest.raises(InvalidJob, match="'ten/sec' is not a rate"):
        dispatcher.dispatch(send, {"tenant_id": 1}, rate_limit="ten/sec")
    with pytest.raises(InvalidJob, match="concurrency"):
        dispatcher.dispatch(send, {"tenant_id": 1}, concurrency=0)


def test_a_declared_limit_is_filled_per_job_and_dispatch_replaces_parts_of_it() -> None:
    registry = _registry()

    @registry.job(rate_limit="100/m", concurrency=5, limit_key="tenant:{tenant_id}")
    def send(tenant_id: int) -> None:
        pass

    @registry.job(concurrency=1)
    def report() -> None:
        pass

    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = foundry.Dispatcher(queue, registry, clock)

    declared = dispatcher.build(send, {"tenant_id": 7})
    changed = queue.get(dispatcher.dispatch(send, {"tenant_id": 7}, concurrency=2))
    by_name = dispatcher.build(report)

    assert declared.limit == Limit("tenant:7", 5, Rate(100, timedelta(minutes=1)))
    assert changed is not None
    assert changed.job.limit == Limit("tenant:7", 2, Rate(100, timedelta(minutes=1)))
    assert by_name.limit == Limit(registry.name_of(report), concurrency=1)


def _dispatcher(registry: foundry.JobRegistry) -> foundry.Dispatcher:
    clock = ManualClock()
    return foundry.Dispatcher(MemoryQueue(clock), registry, clock)


@pytest.mark.parametrize(
    ("template", "account"),
    [
        ("a:{account[id]}", 5),  # not subscriptable
        ("a:{account[id]}", None),
        ("a:{account.id}", {"id": 5}),  # a dict has no attribute id
        ("a:{account[0]}", 5),
    ],
)
@pytest.mark.parametrize("field", ["limit_key", "unique"])
def test_a_key_template_that_cannot_read_its_payload_field_is_an_invalid_job(
    template: str, account: object, field: str
) -> None:
    registry = _registry()
    options: dict[str, object] = (
        {"concurrency": 1, "limit_key": template}
        if field == "limit_key"
        else {"unique": foundry.UniqueSpec(key=template)}
    )

    @registry.job(**options)  # type: ignore[call-overload]
    def sync(account: object) -> None:
        pass

    with pytest.raises(InvalidJob, match=f"{field}.*cannot be filled from the payload"):
        _dispatcher(registry).dispatch(sync, {"account": account})


@pytest.mark.parametrize("template", ["t:{}", "t:{0}", "t:{}:{tenant_id}"])
def test_a_key_template_with_a_positional_field_is_refused_at_declaration(template: str) -> None:
    def send(tenant_id: int, **extra: object) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"limit_key.*name a payload field"):
        _registry().job(concurrency=1, limit_key=template)(send)


def test_a_malformed_key_template_of_a_handler_taking_any_keyword_is_refused_at_declaration() -> (
    None
):
    def send(**fields: object) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"limit_key.*is not a key template"):
        _registry().job(concurrency=1, limit_key="t:{tenant")(send)


def test_a_filled_key_over_the_length_limit_is_refused_saying_so_briefly() -> None:
    registry = _registry()

    @registry.job(concurrency=1, limit_key="tenant:{tenant}")
    def send(tenant: str) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"limit_key.* 10007 characters.*at most 200") as raised:
        _dispatcher(registry).dispatch(send, {"tenant": "x" * 10_000})
    assert len(str(raised.value)) < 400


@pytest.mark.parametrize(
    "rate",
    [
        "5000/s",
        "1001/s",
        "100000/m",
        "99999999999999999999/s",
        Rate(2, timedelta(microseconds=1500)),
    ],
)
def test_a_rate_faster_than_a_start_per_millisecond_is_refused_not_slowed(
    rate: str | Rate,
) -> None:
    def sync(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"rate_limit.*at most '1000/s'"):
        _registry().job(rate_limit=rate)(sync)


def test_a_rate_of_a_start_per_millisecond_is_kept() -> None:
    registry = _registry()

    @registry.job(rate_limit="1000/s")
    def sync(tenant_id: int) -> None:
        pass

    job = _dispatcher(registry).build(sync, {"tenant_id": 1})
    assert job.limit is not None
    assert job.limit.rate == Rate(1000, timedelta(seconds=1))


@pytest.mark.parametrize("text", ["1/9999999999d", "1/36501d"])
def test_a_rate_period_beyond_a_hundred_years_is_refused(text: str) -> None:
    def sync(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match="rate_limit"):
        _registry().job(rate_limit=text)(sync)


def test_a_rate_given_as_a_number_is_refused_showing_the_form() -> None:
    def sync(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"100 is not a rate; write '<count>/<unit>'"):
        _registry().job(rate_limit=100)(sync)  # type: ignore[call-overload]


def test_an_empty_limit_key_is_refused_not_ignored() -> None:
    registry = _registry()

    def sync(tenant_id: int) -> None:
        pass

    @registry.job(concurrency=2, limit_key="tenant:{tenant_id}")
    def send(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match="limit_key"):
        registry.job(concurrency=1, limit_key="")(sync)
    with pytest.raises(InvalidJob, match="limit_key"):
        _dispatcher(registry).dispatch(send, {"tenant_id": 1}, limit_key="")


def test_build_takes_the_limit_options_dispatch_takes_for_a_batch_member() -> None:
    registry = _registry()

    @registry.job(rate_limit="100/m", limit_key="tenant:{tenant_id}")
    def send(tenant_id: int) -> None:
        pass

    clock = ManualClock()
    queue = MemoryQueue(clock)
    dispatcher = foundry.Dispatcher(queue, registry, clock, batches=queue)

    member = dispatcher.build(send, {"tenant_id": 7}, concurrency=1, limit_key="t:{tenant_id}")
    other = dispatcher.build(send, {"tenant_id": 8}, rate_limit="1/s", concurrency=None)
    dispatcher.batch([member, other])

    stored = queue.get(member.id)
    assert stored is not None
    assert stored.job.limit == Limit("t:7", 1, Rate(100, timedelta(minutes=1)))
    assert other.limit == Limit("tenant:8", rate=Rate(1, timedelta(seconds=1)))


def test_a_schedule_whose_payload_cannot_fill_the_limit_key_is_refused_at_declaration() -> None:
    registry = _registry()

    @registry.job(concurrency=1, limit_key="tenant:{tenant_id}")
    def sync(tenant_id: int = 0) -> None:
        pass

    with pytest.raises(foundry.InvalidSchedule, match=r"nightly.*limit_key.*tenant_id"):
        registry.schedule("nightly", sync, every=3600, payload={})
    registry.schedule("hourly", sync, every=3600, payload={"tenant_id": 7})


@pytest.mark.parametrize("concurrency", [2**31, 2**63, 10**20])
def test_a_concurrency_too_large_for_every_queue_is_refused_naming_the_bound(
    concurrency: int,
) -> None:
    def sync(tenant_id: int) -> None:
        pass

    with pytest.raises(InvalidJob, match=r"concurrency.*at most 2147483647"):
        _registry().job(concurrency=concurrency)(sync)
    with pytest.raises(InvalidJob, match="concurrency"):
        Limit("k", concurrency=concurrency)


def test_a_limit_key_alone_for_a_handler_without_a_limit_says_what_is_missing() -> None:
    registry = _registry()

    @registry.job
    def report() -> None:
        pass

    with pytest.raises(InvalidJob, match=r"limit_key='nightly'.*declares no limit.*concurrency="):
        _dispatcher(registry).dispatch(report, limit_key="nightly")
    with pytest.raises(InvalidJob, match=r"limit_key='nightly'.*concurrency="):
        registry.job(name="other", limit_key="nightly")(lambda: None)


def test_a_rate_s_period_takes_seconds_as_every_duration_does() -> None:
    assert Rate(3, per=1) == Rate(3, per=timedelta(seconds=1))
    assert Rate(100, per=60) == Rate.parse("100/m")
