"""A zone as pytz makes one, without pytz: for the tests that pytz zones are read right."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo


class PytzLikeZone(tzinfo):
    """A zone as pytz makes one: one instance per offset, the zone itself (what
    ``pytz.timezone(name)`` gives) at its first offset, local mean time (Paris: +00:09:21);
    ``localize`` gives a wall time the offset in force then, ``normalize`` an instant."""

    def __init__(self, name: str, offset: timedelta = timedelta(minutes=9, seconds=21)) -> None:
        self.zone = name
        self._offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self._offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "LMT"

    def localize(self, dt: datetime) -> datetime:
        offset = dt.replace(tzinfo=ZoneInfo(self.zone)).utcoffset()
        return dt.replace(tzinfo=PytzLikeZone(self.zone, offset or timedelta(0)))

    def normalize(self, dt: datetime) -> datetime:
        here = dt.astimezone(ZoneInfo(self.zone))
        return here.replace(tzinfo=PytzLikeZone(self.zone, here.utcoffset() or timedelta(0)))
