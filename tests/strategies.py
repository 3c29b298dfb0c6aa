"""Hypothesis strategies for domain objects, shared by unit, contract and model tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from foundry.domain import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Delays,
    Exponential,
    Fixed,
    Job,
    Linear,
    RetryPolicy,
    RunAfter,
    RunAt,
    RunNow,
    UniqueSpec,
    UniqueUntil,
)

QUEUE_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"

queue_names = st.text(QUEUE_ALPHABET, min_size=1, max_size=30)
job_ids = st.text(QUEUE_ALPHABET, min_size=1, max_size=64)
#: What a handler may be named: printable text, not only spaces.
handler_names = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and s.isprintable())
durations = st.integers(min_value=0, max_value=10**12).map(lambda us: timedelta(microseconds=us))
positive_durations = durations.filter(lambda delta: delta > timedelta(0))
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=10), json_values, max_size=5)

backoffs = st.one_of(
    st.builds(Fixed, durations),
    st.builds(Linear, durations),
    st.builds(Exponential, durations, st.booleans()),
    st.builds(Delays, st.lists(durations, min_size=1, max_size=4)),
)
retry_policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(min_value=1, max_value=50),
    backoff=backoffs,
    cap=durations,
    retry_on=st.frozensets(st.sampled_from(["ValueError", "pkg.Error"]), max_size=2),
    permanent=st.frozensets(st.sampled_from(["KeyError", "pkg.Fatal"]), max_size=2),
)
schedules = st.one_of(st.just(RunNow()), st.builds(RunAt, moments), st.builds(RunAfter, durations))
unique_specs = st.none() | st.builds(
    UniqueSpec,
    key=st.text(min_size=1, max_size=50),
    ttl=positive_durations,
    until=st.sampled_from(UniqueUntil),
)


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    """Any valid job."""
    timeout = draw(positive_durations)
    soft = draw(st.none() | st.integers(1, 10**6).map(lambda us: timedelta(microseconds=us)))
    return Job(
        name=draw(handler_names),
        payload=draw(payloads),
        queue=draw(queue_names),
        id=draw(job_ids),
        priority=draw(st.integers(PRIORITY_MIN, PRIORITY_MAX)),
        schedule=draw(schedules),
        retry=draw(retry_policies),
        timeout=timeout,
        soft_timeout=soft if soft is not None and soft < timeout else None,
        unique=draw(unique_specs),
        created_at=draw(st.none() | moments),
        metadata=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
    )
