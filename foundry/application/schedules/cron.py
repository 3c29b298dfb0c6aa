"""Cron expressions and time zones, parsed: the library behind the domain's ``Cron``.

cronsim evaluates the expressions (typed, no dependencies, zoneinfo-era, forward and reverse
iteration, Debian cron's semantics for the fields). It is handed naive wall times only: the
domain applies Foundry's own daylight-saving rules, not the library's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from foundry.domain import Cron

#: The ``@`` shorthands, as Vixie cron spells them out (``@reboot`` has no meaning here).
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FORMS = (
    "5 fields (minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'), 6 with "
    "seconds first ('*/10 * * * * *'), or one of " + ", ".join(ALIASES)
)
_PROBE = datetime(2000, 1, 1)


@attrs.frozen
class CronsimRules:
    """``CronRules`` by cronsim, over naive wall times (cronsim applies no DST rules to them)."""

    text: str

    def local_times_after(self, local: datetime) -> Iterator[datetime]:
        """Matching wall times strictly after ``local``, ascending."""
        return iter(CronSim(self.text, local))

    def local_times_before(self, local: datetime) -> Iterator[datetime]:
        """Matching wall times strictly before ``local``, descending."""
        return iter(CronSim(self.text, local, reverse=True))


def zone_named(tz: str | tzinfo) -> tzinfo:
    """The IANA zone ``tz`` names (or ``tz`` itself); ``ValueError`` saying the fix if unknown.

    A pytz zone (one with pytz's ``localize``) is read as the ``ZoneInfo`` of its name: wall
    times are given zones by ``replace(tzinfo=...)``, which gives a pytz zone its first offset
    (local mean time, Berlin's +00:53), not the one in force then.
    """
    if isinstance(tz, tzinfo):
        return _zoneinfo_of_pytz(tz) if hasattr(tz, "localize") else tz
    if tz in ("UTC", "Z"):
        return UTC
    if tz == "localtime":  # a link to /etc/localtime: hosts set differently disagree on ticks
        raise ValueError(
            "tz='localtime' is each host's own zone, so workers on hosts set differently would "
            "fire at different instants; name the zone, e.g. 'Europe/Berlin'"
        )
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {tz!r}; give an IANA name such as 'Europe/Berlin', "
            "'America/New_York' or 'UTC'"
        ) from None


def _zoneinfo_of_pytz(tz: tzinfo) -> tzinfo:
    name = getattr(tz, "zone", None)
    try:
        return UTC if name == "UTC" else ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"the pytz zone {tz!r} names no zone zoneinfo knows ({name!r}), and pytz zones are "
            "read wrong outside localize(); give zoneinfo.ZoneInfo('Area/City') or the zone's "
            "IANA name"
        ) from None


def parse_cron(expression: str, tz: str | tzinfo = "UTC") -> Cron:
    """A domain ``Cron`` for ``expression`` read in zone ``tz``.

    Raises ``ValueError`` naming the problem and the accepted forms.
    """
    if not isinstance(expression, str):
        raise ValueError(f"cron must be a string, got {expression!r}; give {_FORMS}")
    text = ALIASES.get(expression.strip().lower(), expression.strip())
    if text.startswith("@") or len(text.split()) not in (5, 6):
        raise ValueError(f"cron {expression!r} is not a cron expression; give {_FORMS}")
    try:
        next(CronSim(text, _PROBE))
    except CronSimError as error:
        raise ValueError(f"cron {expression!r} is invalid ({error}); give {_FORMS}") from None
    except StopIteration:
        raise ValueError(
            f"cron {expression!r} never matches (no date fits every field); check the "
            "day-of-month, month and day-of-week fields"
        ) from None
    return Cron(expression.strip(), zone_named(tz), CronsimRules(text))
