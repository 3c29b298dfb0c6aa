"""Job states change only by legal transitions; errors are described without keeping them."""

from __future__ import annotations

import pytest

from foundry.domain import ErrorInfo, JobState, PermanentFailure


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (JobState.READY, JobState.ACTIVE),
        (JobState.DELAYED, JobState.READY),
        (JobState.ACTIVE, JobState.COMPLETED),
        (JobState.ACTIVE, JobState.DELAYED),
        (JobState.ACTIVE, JobState.READY),
        (JobState.ACTIVE, JobState.DEAD),
        (JobState.DEAD, JobState.READY),
        (JobState.READY, JobState.CANCELLED),
        (JobState.ACTIVE, JobState.CANCELLED),
    ],
)
def test_legal_transitions_are_allowed(source: JobState, target: JobState) -> None:
    assert source.become(target) is target


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (JobState.COMPLETED, JobState.READY),
        (JobState.READY, JobState.COMPLETED),
        (JobState.DELAYED, JobState.ACTIVE),
        (JobState.CANCELLED, JobState.READY),
    ],
)
def test_illegal_transitions_are_refused(source: JobState, target: JobState) -> None:
    with pytest.raises(ValueError, match="cannot become"):
        source.become(target)


def test_only_completed_dead_and_cancelled_are_final() -> None:
    assert {state for state in JobState if state.is_final} == {
        JobState.COMPLETED,
        JobState.DEAD,
        JobState.CANCELLED,
    }


def test_an_exception_is_described_with_its_class_hierarchy() -> None:
    info = ErrorInfo.from_exception(PermanentFailure("bad row"), attempt=2, worker="w1")

    assert info.type == "foundry.domain.errors.PermanentFailure"
    assert "foundry.domain.errors.FoundryError" in info.mro
    assert info.message == "bad row"
    assert info.attempt == 2
    assert info.is_a(frozenset({"FoundryError"}))
    assert not info.is_a(frozenset({"KeyError"}))


def test_an_exception_whose_str_raises_is_still_described() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    info = ErrorInfo.from_exception(Broken())

    assert "unprintable Broken" in info.message


@pytest.mark.parametrize(
    ("source", "after"),
    [
        (JobState.READY, JobState.CANCELLED),
        (JobState.DELAYED, JobState.CANCELLED),
        (JobState.ACTIVE, JobState.ACTIVE),
        (JobState.COMPLETED, JobState.COMPLETED),
        (JobState.DEAD, JobState.DEAD),
        (JobState.CANCELLED, JobState.CANCELLED),
    ],
)
def test_a_cancel_ends_only_a_pending_job(source: JobState, after: JobState) -> None:
    assert source.on_cancel() is after
    assert after is source or source.can_become(after)


@pytest.mark.parametrize(
    ("meant", "instead"),
    [
        (JobState.READY, JobState.CANCELLED),
        (JobState.DELAYED, JobState.CANCELLED),
        (JobState.COMPLETED, JobState.COMPLETED),
        (JobState.DEAD, JobState.DEAD),
        (JobState.CANCELLED, JobState.CANCELLED),
    ],
)
def test_a_job_asked_to_stop_never_runs_again(meant: JobState, instead: JobState) -> None:
    assert JobState.ACTIVE.after_stop(meant) is instead
    assert JobState.ACTIVE.can_become(instead)
