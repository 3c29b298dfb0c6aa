"""Durations as log lines say them: one short form, as people and ops write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.domain.durations import spoken


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(microseconds=5), "0.005ms"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=2, seconds=0.5), "2m0.5s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(seconds=-1.5), "-1.5s"),
    ],
)
def test_a_duration_is_said_in_its_largest_whole_units_then_seconds(
    value: timedelta, said: str
) -> None:
    assert spoken(value) == said
