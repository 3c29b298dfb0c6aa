"""How often, and how late, a failed job is tried again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from random import Random

import attrs

from foundry.domain.durations import as_duration
from foundry.domain.error_info import ErrorInfo

#: Errors that no retry can fix; a policy adds its own with ``permanent``.
ALWAYS_PERMANENT = frozenset(
    {"PermanentFailure", "UndecodableJob", "UnknownHandler", "InvalidResult"}
)


def _delay(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValueError(
            f"{attribute.name} must be a duration of 0 or more (seconds or a timedelta), "
            f"got {value!r}"
        )


# Converters are functions, not the builtins ``tuple`` and ``frozenset``: attrs reads each
# converter's signature when it builds the class, and a builtin's is parsed from its text
# (about 10 M instructions each, a few ms of every process's startup).
def _delays(values: Iterable[timedelta | float]) -> tuple[timedelta, ...]:
    return tuple(as_duration(value) for value in values)


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class Fixed:
    """The same delay before every retry."""

    delay: timedelta = attrs.field(
        default=timedelta(seconds=1), converter=as_duration, validator=_delay
    )

    def ceiling(self, attempt: int) -> int:
        """The delay after ``attempt`` (1-based) in microseconds, before the cap."""
        return _micros(self.delay)


@attrs.frozen
class Linear:
    """``step`` times the attempt number: 1s, 2s, 3s..."""

    step: timedelta = attrs.field(
        default=timedelta(seconds=1), converter=as_duration, validator=_delay
    )

    def ceiling(self, attempt: int) -> int:
        """The delay after ``attempt`` (1-based) in microseconds, before the cap."""
        return _micros(self.step) * attempt


@attrs.frozen
class Exponential:
    """``base * 2**(attempt-1)``, with full jitter: a uniform draw in [0, that]."""

    base: timedelta = attrs.field(
        default=timedelta(seconds=1), converter=as_duration, validator=_delay
    )
    jitter: bool = True

    def ceiling(self, attempt: int) -> int:
        """The largest delay after ``attempt`` (1-based) in microseconds, before the cap."""
        # Past 2**64 any cap a timedelta can hold wins; bounding the shift keeps ints small.
        return _micros(self.base) << min(attempt - 1, 64)


@attrs.frozen
class Delays:
    """An explicit list of delays; the last one repeats."""

    delays: tuple[timedelta, ...] = attrs.field(
        converter=_delays,
        validator=[
            attrs.validators.min_len(1),
            attrs.validators.deep_iterable(_delay),
        ],
    )

    def ceiling(self, attempt: int) -> int:
        """The delay after ``attempt`` (1-based) in microseconds, before the cap."""
        return _micros(self.delays[min(attempt, len(self.delays)) - 1])


Backoff = Fixed | Linear | Exponential | Delays


@attrs.frozen
class Retry:
    """Try again after ``delay``."""

    delay: timedelta


@attrs.frozen
class Dead:
    """Give up: the job goes to the dead letters with ``reason``."""

    reason: str


@attrs.frozen
class Cancel:
    """Stop for good: a cancel asked the running job to stop; it ends cancelled with
    ``reason`` and is not retried."""

    reason: str


Decision = Retry | Dead | Cancel


@attrs.frozen
class RetryPolicy:
    """How many starts a job gets, and the delay between them.

    ``max_attempts`` counts starts, not failures: a job whose worker dies every time still ends
    dead. ``retry_on`` (empty: every error) and ``permanent`` name exception classes, matched
    with their subclasses (see ``ErrorInfo.is_a``).
    """

    max_attempts: int = attrs.field(
        default=3, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)]
    )
    backoff: Backoff = attrs.field(factory=Exponential)
    cap: timedelta = attrs.field(
        default=timedelta(minutes=10), converter=as_duration, validator=_delay
    )
    retry_on: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    permanent: frozenset[str] = attrs.field(default=frozenset(), converter=_names)

    def next_delay(self, attempt: int, rng: Random) -> timedelta:
        """The delay before the attempt after ``attempt`` (1-based), within [0, cap]."""
        ceiling = min(self.backoff.ceiling(attempt), _micros(self.cap))
        if isinstance(self.backoff, Exponential) and self.backoff.jitter:
            return timedelta(microseconds=rng.randint(0, ceiling))
        return timedelta(microseconds=ceiling)

    def decide(self, attempt: int, error: ErrorInfo, rng: Random) -> Decision:
        """What to do after ``attempt`` (1-based) failed with ``error``."""
        if error.is_a(ALWAYS_PERMANENT | self.permanent):
            return Dead(f"permanent error {error.type}: {error.message}")
        if self.retry_on and not error.is_a(self.retry_on):
            return Dead(f"{error.type} is not retried by this job's policy: {error.message}")
        if attempt >= self.max_attempts:
            return Dead(
                f"gave up after {attempt} attempts; last error {error.type}: {error.message}"
            )
        return Retry(self.next_delay(attempt, rng))


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
