"""Batches: the domain's rules of a batch's end (which callbacks fire, and when) and the bad
batches it refuses (the dispatchers' batches on every backend:
tests/contract/test_dispatch_batches.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.domain import (
    Batch,
    BatchProgress,
    Callback,
    InvalidJob,
    Job,
    MemberEnd,
    UniqueSpec,
)

# -- the rules ----------------------------------------------------------------------------------


def test_then_and_finally_fire_once_at_the_last_completion() -> None:
    progress = BatchProgress(total=2)
    progress, fired = progress.ended(MemberEnd.COMPLETED)
    assert (fired, progress.pending, progress.succeeded) == ((), 1, None)

    progress, fired = progress.ended(MemberEnd.COMPLETED)

    assert fired == (Callback.THEN, Callback.FINALLY)
    assert (progress.finished, progress.succeeded) == (True, True)
    with pytest.raises(ValueError, match="pending"):
        progress.ended(MemberEnd.COMPLETED)


def test_catch_fires_at_the_first_failure_only() -> None:
    progress, fired = BatchProgress(total=3).ended(MemberEnd.FAILED)
    assert fired == (Callback.CATCH,)
    progress, fired = progress.ended(MemberEnd.FAILED)
    assert fired == ()

    progress, fired = progress.ended(MemberEnd.COMPLETED)

    assert fired == (Callback.FINALLY,)
    assert progress.succeeded is False


def test_allow_failures_runs_then_unless_cancelled() -> None:
    allowed = BatchProgress(total=2, allow_failures=True)
    progress, _ = allowed.ended(MemberEnd.FAILED)
    _, fired = progress.ended(MemberEnd.CANCELLED)
    assert fired == (Callback.THEN, Callback.FINALLY)

    cancelled = allowed.cancel()
    _, fired = cancelled.ended(MemberEnd.CANCELLED, 2)
    assert fired == (Callback.FINALLY,)


@given(st.lists(st.sampled_from(list(MemberEnd)), min_size=1, max_size=30), st.booleans())
def test_every_callback_fires_at_most_once_and_finally_exactly_once(
    ends: list[MemberEnd], allow_failures: bool
) -> None:
    progress = BatchProgress(total=len(ends), allow_failures=allow_failures)
    fired: list[Callback] = []
    for end in ends:
        progress, now = progress.ended(end)
        fired += now

    assert fired.count(Callback.FINALLY) == 1
    assert fired.count(Callback.CATCH) == (1 if MemberEnd.FAILED in ends else 0)
    all_completed = all(end is MemberEnd.COMPLETED for end in ends)
    assert fired.count(Callback.THEN) == (1 if all_completed or allow_failures else 0)
    assert fired[-1] is Callback.FINALLY


def test_bad_batches_are_refused_with_the_field_named() -> None:
    with pytest.raises(InvalidJob, match="at least one job"):
        Batch([])
    with pytest.raises(InvalidJob, match="share one queue"):
        Batch([Job("a"), Job("b", queue="other")])
    with pytest.raises(InvalidJob, match="unique"):
        Batch([Job("a", unique=UniqueSpec("k"))])
    with pytest.raises(InvalidJob, match="cannot wait"):
        Batch([Job("a", id="a")], {Callback.THEN: Job("t", after=("a",))})
    with pytest.raises(InvalidJob, match="then, catch or finally"):
        Batch([Job("a")], {"afterwards": Job("t")})


def test_a_cycle_among_members_is_named() -> None:
    jobs = [
        Job("a", id="a", after=("c",)),
        Job("b", id="b", after=("a",)),
        Job("c", id="c", after=("b",)),
    ]

    with pytest.raises(InvalidJob, match="cycle") as raised:
        Batch(jobs)

    assert "a -> c -> b -> a" in str(raised.value)


def test_members_are_put_after_the_members_they_wait_for() -> None:
    batch = Batch([Job("x", id="late", after=("early",)), Job("x", id="early")])

    assert [job.id for job in batch.jobs] == ["early", "late"]
