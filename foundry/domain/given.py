"""Checks of what a caller hands the queue port's admin and inspection calls: a value of the
wrong type is a ``TypeError`` naming what to pass, before the backend sees it (a list or
``None`` would otherwise be looked up as no such job, or sent on as something else, and a
lone string where a list belongs would be read one character at a time)."""

from __future__ import annotations

from collections.abc import Sequence

from foundry.domain.job import given_id
from foundry.domain.state import JobState


def given_queue(value: str) -> str:
    """``value`` if it is a string (a queue name); otherwise a ``TypeError``."""
    if isinstance(value, str):
        return value
    raise TypeError(
        f"expected a queue name string, got {value!r} ({type(value).__name__}); "
        "pass one name, like 'default'"
    )


def given_name(value: str) -> str:
    """``value`` if it is a string (a schedule's name); otherwise a ``TypeError``."""
    if isinstance(value, str):
        return value
    raise TypeError(
        f"expected a schedule name string, got {value!r} ({type(value).__name__}); "
        "pass the name it was declared with"
    )


def given_optional_queue(value: str | None) -> str | None:
    """``None`` (every queue) or ``given_queue(value)``."""
    return None if value is None else given_queue(value)


def _sequence(value: Sequence[str], what: str) -> Sequence[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            f"expected a list of {what}, got {value!r} ({type(value).__name__}); "
            f"wrap one in a list, like [{value!r}]"
        )
    return value


def given_queues(value: Sequence[str]) -> list[str]:
    """``value`` as a list of queue names, or a ``TypeError`` (a lone name included)."""
    return [given_queue(name) for name in _sequence(value, "queue names")]


def given_ids(value: Sequence[str] | None) -> list[str] | None:
    """``None`` (every one), or ``value`` as a list of ids, or a ``TypeError``."""
    if value is None:
        return None
    return [given_id(one) for one in _sequence(value, "job ids")]


def given_state(value: object) -> JobState:
    """``value`` as a ``JobState`` (its string value is accepted), or a ``TypeError``."""
    if isinstance(value, JobState):
        return value
    if isinstance(value, str) and value in JobState._value2member_map_:
        return JobState(value)
    names = ", ".join(f"JobState.{state.name}" for state in JobState)
    raise TypeError(f"expected a JobState ({names}), got {value!r} ({type(value).__name__})")
