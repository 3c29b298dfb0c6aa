"""The values a dashboard request carries, checked, and the moments and durations it shows.

A value the dashboard cannot act on raises ``BadInput`` with a message the client sees (HTTP
400) saying what to send instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from foundry.domain import InvalidJob, Job, JobState, validate_queue_name


class BadInput(ValueError):
    """A request the dashboard cannot act on; the message says what to send instead."""


def queue_name(value: object) -> str:
    """A valid queue name, or ``BadInput``."""
    try:
        return validate_queue_name(value)
    except InvalidJob as error:
        raise BadInput(str(error)) from None


def job_id(value: object) -> str:
    """A valid job id (by the domain's own rule), or ``BadInput``."""
    return _valid_id(value, "job id")


def batch_id(value: object) -> str:
    """A valid batch id (the job ids' rule), or ``BadInput``."""
    return _valid_id(value, "batch id")


def _valid_id(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"a {what} must be a string")
    try:
        Job("probe", id=value)
    except InvalidJob:
        raise BadInput(f"{value[:80]!r} is not a {what} (1-64 letters, digits or '_.:-')") from None
    return value


def bounded(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or ``BadInput``."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadInput(f"{name} must be from {low} to {high}, got {value}")
    return value


def job_state(value: str) -> JobState:
    """A listable job state by name, or ``BadInput``."""
    try:
        state = JobState(value)
    except ValueError:
        state = JobState.CANCELLED
    if state not in LISTED:
        listed = ", ".join(s.value for s in LISTED)
        raise BadInput(f"state must be one of {listed}, got {value[:40]!r}")
    return state


LISTED = (
    JobState.READY,
    JobState.DELAYED,
    JobState.WAITING,
    JobState.ACTIVE,
    JobState.COMPLETED,
    JobState.DEAD,
)


def iso(moment: datetime | None) -> str | None:
    """A moment as ISO 8601, or None."""
    return moment.isoformat() if moment is not None else None


def seconds(delta: timedelta | None) -> float | None:
    """A duration in seconds, or None."""
    return delta.total_seconds() if delta is not None else None
