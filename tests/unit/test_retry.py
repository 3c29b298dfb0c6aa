"""Retry policies are pure: delays and decisions follow from the attempt, the error and a seed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.adapters.codec import Codec
from foundry.domain import Dead, Delays, ErrorInfo, Exponential, Fixed, Linear, Retry, RetryPolicy
from tests.strategies import durations, retry_policies


def micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds


attempts = st.integers(min_value=1, max_value=200)
seeds = st.integers(min_value=0, max_value=2**32)
BOOM = ErrorInfo(type="ValueError", message="boom")


@given(retry_policies, attempts, seeds)
def test_every_delay_lies_between_zero_and_the_cap(
    policy: RetryPolicy, attempt: int, seed: int
) -> None:
    delay = policy.next_delay(attempt, Random(seed))

    assert timedelta(0) <= delay <= policy.cap


@given(retry_policies, attempts, seeds)
def test_the_same_seed_gives_the_same_delay(policy: RetryPolicy, attempt: int, seed: int) -> None:
    assert policy.next_delay(attempt, Random(seed)) == policy.next_delay(attempt, Random(seed))


@given(durations.filter(lambda d: d > timedelta(0)), st.integers(1, 60))
def test_exponential_delays_double_until_the_cap(base: timedelta, attempt: int) -> None:
    cap = base * 1000 if base < timedelta(days=10**5) else timedelta.max
    policy = RetryPolicy(backoff=Exponential(base, jitter=False), cap=cap)

    delay = policy.next_delay(attempt, Random(0))

    assert delay == timedelta(microseconds=min(micros(base) << (attempt - 1), micros(cap)))


@given(durations, attempts, seeds)
def test_full_jitter_draws_within_the_exponential_ceiling(
    base: timedelta, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(backoff=Exponential(base), cap=timedelta(days=1))
    ceiling = min(base * 2 ** min(attempt - 1, 20), policy.cap)

    delay = policy.next_delay(min(attempt, 21), Random(seed))

    assert timedelta(0) <= delay <= ceiling


def test_full_jitter_spreads_delays_across_the_range() -> None:
    policy = RetryPolicy(backoff=Exponential(timedelta(seconds=8)), cap=timedelta(minutes=1))
    rng = Random(7)

    delays = {policy.next_delay(1, rng) for _ in range(200)}

    assert len(delays) > 150
    assert min(delays) < timedelta(seconds=2) < timedelta(seconds=6) < max(delays)


def test_fixed_linear_and_listed_backoffs_give_their_delays() -> None:
    rng = Random(0)
    second = timedelta(seconds=1)

    assert RetryPolicy(backoff=Fixed(second)).next_delay(5, rng) == second
    assert RetryPolicy(backoff=Linear(second)).next_delay(3, rng) == 3 * second
    listed = RetryPolicy(backoff=Delays([second, 2 * second]))
    assert [listed.next_delay(n, rng) for n in (1, 2, 3)] == [second, 2 * second, 2 * second]


def test_backoff_delays_and_the_cap_are_seconds_or_timedeltas() -> None:
    seconds = RetryPolicy(backoff=Delays([1, 2.5, timedelta(seconds=30)]), cap=60)

    assert seconds.backoff == Delays(
        (timedelta(seconds=1), timedelta(seconds=2.5), timedelta(seconds=30))
    )
    assert seconds.cap == timedelta(minutes=1)
    assert (Fixed(5), Linear(2), Exponential(0.5)) == (
        Fixed(timedelta(seconds=5)),
        Linear(timedelta(seconds=2)),
        Exponential(timedelta(milliseconds=500)),
    )


@pytest.mark.parametrize("delay", [-1, "5", None, float("nan")])
def test_a_delay_that_is_not_a_duration_of_0_or_more_is_refused_naming_it(delay: object) -> None:
    with pytest.raises(ValueError, match=f"got {re.escape(repr(delay))}"):
        Fixed(delay)  # type: ignore[arg-type]


def test_a_failure_before_the_last_attempt_is_retried() -> None:
    policy = RetryPolicy(max_attempts=3, backoff=Fixed(timedelta(seconds=4)))

    assert policy.decide(2, BOOM, Random(0)) == Retry(timedelta(seconds=4))


def test_the_last_attempt_gives_up_with_the_error_in_the_reason() -> None:
    decision = RetryPolicy(max_attempts=3).decide(3, BOOM, Random(0))

    assert isinstance(decision, Dead)
    assert "3 attempts" in decision.reason
    assert "ValueError: boom" in decision.reason


def test_permanent_errors_and_their_subclasses_are_never_retried() -> None:
    policy = RetryPolicy(max_attempts=10, permanent={"myapp.Fatal"})
    subclass = ErrorInfo(type="myapp.VeryFatal", message="no", mro=("myapp.Fatal", "Exception"))
    handler_gave_up = ErrorInfo(type="foundry.domain.errors.PermanentFailure", message="bad input")

    assert policy.decide(1, subclass, Random(0)) == Dead("permanent error myapp.VeryFatal: no")
    assert isinstance(policy.decide(1, handler_gave_up, Random(0)), Dead)
    assert isinstance(policy.decide(1, BOOM, Random(0)), Retry)


def test_retry_on_limits_retries_to_the_named_errors() -> None:
    policy = RetryPolicy(max_attempts=10, retry_on={"ConnectionError"})
    reset = ErrorInfo(type="ConnectionResetError", mro=("ConnectionError", "OSError"))

    assert isinstance(policy.decide(1, reset, Random(0)), Retry)
    assert policy.decide(1, BOOM, Random(0)) == Dead(
        "ValueError is not retried by this job's policy: boom"
    )


def test_error_histories_stored_before_the_foundry_package_match_by_the_current_names() -> None:
    stored = Codec().decode_errors(
        b'[{"type": "application.errors.TimeLimitExceeded", "message": "5s",'
        b' "mro": ["domain.errors.FoundryError", "Exception", "BaseException"]}]'
    )[0]
    policy = RetryPolicy(max_attempts=10, retry_on={"foundry.application.errors.TimeLimitExceeded"})
    gave_up_then = ErrorInfo(type="domain.errors.PermanentFailure", message="bad input")

    assert stored.type == "application.errors.TimeLimitExceeded"
    assert stored.is_a(frozenset({"foundry.domain.errors.FoundryError"}))
    assert isinstance(policy.decide(1, stored, Random(0)), Retry)
    assert isinstance(RetryPolicy(max_attempts=10).decide(1, gave_up_then, Random(0)), Dead)


def test_an_apps_own_domain_errors_are_not_taken_for_foundrys() -> None:
    own = ErrorInfo(type="domain.errors.Conflict", message="taken")

    assert not own.is_a(frozenset({"foundry.domain.errors.Conflict"}))


MINUS = -timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Fixed(MINUS), "delay"),
        (lambda: Linear(MINUS), "step"),
        (lambda: Exponential(MINUS), "base"),
        (lambda: Delays([timedelta(seconds=1), MINUS]), "delays"),
        (lambda: RetryPolicy(cap=MINUS), "cap"),
    ],
)
def test_a_negative_delay_is_refused_naming_the_field(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a duration of 0 or more"):
        build()


def test_an_empty_delay_list_is_refused() -> None:
    with pytest.raises(ValueError, match="delays"):
        Delays([])


def test_the_documented_defaults() -> None:
    policy = RetryPolicy()

    assert policy.max_attempts == 3
    assert policy.backoff == Exponential(timedelta(seconds=1), jitter=True)
    assert policy.cap == timedelta(minutes=10)
    assert (policy.retry_on, policy.permanent) == (frozenset(), frozenset())
    assert Fixed().delay == Linear().step == timedelta(seconds=1)
    assert RetryPolicy(max_attempts=1).decide(1, BOOM, Random(0)) == Dead(
        "gave up after 1 attempts; last error ValueError: boom"
    )


def test_zero_attempts_or_a_fraction_of_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(TypeError, match="max_attempts"):
        RetryPolicy(max_attempts=2.5)  # type: ignore[arg-type]
