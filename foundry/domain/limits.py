"""Limits per key: how many jobs of one key run at once, and how often they start.

A ``Limit`` rides on a job (``Job.limit``); its ``key`` names what it is shared by (every job
with the same key in the same queue, whichever handler). The queue enforces it where jobs are
claimed: a job over its limit is set aside without spending an attempt and comes back as soon
as the limit allows.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import attrs

from foundry.domain.durations import as_duration, shown
from foundry.domain.errors import InvalidJob
from foundry.domain.schedule import MAX_DELAY

MAX_LIMIT_KEY_LENGTH = 200
#: The largest concurrency (what a PostgreSQL integer holds): a larger one would be no limit.
MAX_CONCURRENCY = 2**31 - 1
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")
_MS = timedelta(milliseconds=1)


@attrs.frozen
class Rate:
    """About ``count`` starts per ``per``, spread evenly: one turn every ``per / count``.

    No burst: after a quiet spell, the next start is allowed at once and the one after it a
    full interval later. A backlog starts on the key's own schedule of turns, one per
    interval, in the order the claim met its jobs: a start that came late (a busy worker)
    does not push the turns after it back, so a long run keeps the rate however late the
    claims; it may be followed sooner (at once if it came a whole interval late), so a window
    of ``per`` holds at most ``count + 1`` starts (``count`` when every claim is on time).
    """

    count: int = attrs.field()
    per: timedelta = attrs.field(converter=as_duration)

    @count.validator
    def _count(self, _: attrs.Attribute[int], value: object) -> None:
        if type(value) is not int or value < 1:
            raise InvalidJob("rate_limit", f"count {value!r} must be a whole number >= 1")

    @per.validator
    def _per(self, _: attrs.Attribute[timedelta], value: object) -> None:
        if not isinstance(value, timedelta) or value < _MS:
            raise InvalidJob(
                "rate_limit",
                f"period {shown(value)} must be at least 1 ms (seconds or a timedelta)",
            )

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/m"``, ``"20/s"``, ``"5/10s"``, ``"1000/hour"`` (units s, m, h, d, or their
        names, singular or plural); raises ``InvalidJob`` naming the form otherwise."""
        found = _RATE.fullmatch(text) if isinstance(text, str) else None
        unit = _unit(found[3]) if found else None
        if found is None or unit is None or found[2] == "0":
            raise InvalidJob(
                "rate_limit",
                f"{text!r} is not a rate; write '<count>/<unit>' with a unit of s, m, h or d, "
                "e.g. '100/m', '20/s' or '5/10s'",
            )
        seconds = unit * int(found[2] or 1)
        if seconds > MAX_DELAY.total_seconds():
            raise InvalidJob(
                "rate_limit", f"{text!r:.80}: the period must be at most {MAX_DELAY.days} days"
            )
        return cls(int(found[1]), timedelta(seconds=seconds))

    def kept(self) -> Rate:
        """This rate, if a key can keep it; raises ``InvalidJob`` otherwise: turns are whole
        milliseconds apart, so a rate faster than one start per millisecond would run slower
        than written, and a period over ``MAX_DELAY`` lies beyond what a schedule reaches."""
        if self.per > MAX_DELAY:
            raise InvalidJob("rate_limit", f"the period must be at most {MAX_DELAY.days} days")
        if self.per / _MS < self.count:
            raise InvalidJob(
                "rate_limit",
                f"{self.count} per {self.per.total_seconds():g} s is faster than one start per "
                "millisecond, the finest turn a key keeps (it would run at 1000/s); write at "
                "most '1000/s', or leave the rate out and bound the key with concurrency=",
            )
        return self

    @property
    def interval_ms(self) -> int:
        """Milliseconds between two starts (rounded up: never faster than stated)."""
        return math.ceil(self.per / _MS / self.count)


@attrs.frozen
class Limit:
    """At most ``concurrency`` jobs of ``key`` running at once and/or starts at ``rate``.

    ``key`` is the filled key (``"tenant:7"``); a handler's declaration may hold a template
    (``"tenant:{tenant_id}"``) that each job fills from its payload.
    """

    key: str = attrs.field()
    concurrency: int | None = attrs.field(default=None)
    rate: Rate | None = attrs.field(default=None)

    @key.validator
    def _key(self, _: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str):
            raise InvalidJob("limit_key", f"{value!r:.80} must be a string")
        if not 1 <= len(value) <= MAX_LIMIT_KEY_LENGTH:
            raise InvalidJob(
                "limit_key",
                f"{value!r:.80} is {len(value)} characters; a key has at least 1 and at most "
                f"{MAX_LIMIT_KEY_LENGTH} (a template's too, once filled from the payload)",
            )

    @concurrency.validator
    def _concurrency(self, _: attrs.Attribute[int | None], value: object) -> None:
        if value is not None and (type(value) is not int or not 1 <= value <= MAX_CONCURRENCY):
            raise InvalidJob(
                "concurrency",
                f"{value!r:.40} must be a whole number from 1 to at most {MAX_CONCURRENCY} "
                "(or None for no limit)",
            )

    @rate.validator
    def _rate(self, _: attrs.Attribute[Rate | None], value: object) -> None:
        if value is not None and not isinstance(value, Rate):
            raise InvalidJob("rate_limit", f"{value!r} must be a Rate")
        if value is None and self.concurrency is None:
            raise InvalidJob("limit", "give concurrency=, rate_limit= or both")


def _unit(name: str) -> int | None:
    """Seconds in the unit ``name`` (a plural of a word unit too: ``"minutes"``)."""
    if name in _UNITS:
        return _UNITS[name]
    return _UNITS.get(name[:-1]) if len(name) > 2 and name.endswith("s") else None


def rate_turn(rate: Rate, *, holds_turn: bool, next_ms: int, now_ms: int) -> tuple[int | None, int]:
    """A rate-limited job's turn, as a claim meets it at ``now_ms``: ``(None, next)`` to start
    now, or ``(at, next)`` to wait until ``at``, the key's next turn, which the job then holds;
    with the key's new ``next`` (the earliest next start: a start is at least an interval
    after the one before).

    The claim asks only for a job that no other holds the key's turn before: the others wait
    in line behind the holder, and the one first in line takes the turn after each start (or
    the holder's own turn when the holder is cancelled or deleted), so no turn is lost. A job
    starts once the key's next turn has come. The turn after a job that held the turn
    (``holds_turn``) follows the key's schedule, not the claim's time: a claim up to an
    interval late loses nothing, a later one only what exceeds the interval. So any ``m + 1``
    consecutive starts span at least ``m - 1`` intervals.
    """
    interval = rate.interval_ms
    if next_ms > now_ms:
        return next_ms, next_ms
    if holds_turn:
        return None, max(next_ms, now_ms - interval) + interval
    return None, now_ms + interval
