"""The bench harness summarises samples the way the README's table claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import Figure, Metric, percentile
from bench.peers.__main__ import header, systems_named
from bench.peers.bodies import LineCounter
from bench.peers.table import cell, ratios


def test_a_figure_is_the_median_of_its_samples_with_min_and_max() -> None:
    figure = Figure("enqueue", "redis", Metric("single", "single", "jobs/s"), (9.0, 1.0, 5.0))

    summary = (figure.median, figure.low, figure.high)

    assert summary == (5.0, 1.0, 9.0)


def test_a_lower_is_better_target_is_met_at_or_below_it() -> None:
    latency = Metric("p99", "p99", "ms", target=1.0, higher_is_better=False)

    verdicts = [latency.meets(value) for value in (0.9, 1.0, 1.1)]

    assert verdicts == [True, True, False]


def test_a_metric_without_target_has_no_verdict() -> None:
    floor = Metric("bare", "bare", "us")

    assert floor.meets(123.0) is None


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    quantiles = [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)]

    assert quantiles == [50.0, 90.0, 99.0, 100.0]


def test_a_peers_cell_is_the_median_with_its_range_or_a_dash() -> None:
    cells = [cell([3.0, 1.0, 2.0]), cell([0.25]), cell([])]

    assert cells == ["2 (1-3)", "0.25", "—"]


def test_peers_ratios_say_how_many_times_better_foundry_is_either_way() -> None:
    samples = {
        "foundry": {"single": [200.0], "p50": [0.5]},
        "huey": {"single": [100.0], "p50": [1.0]},
    }

    text = ratios(samples, {"foundry": "Foundry", "huey": "Huey"}, "foundry")

    assert "| single | 2.00 |" in text
    assert "| p50 | 2.00 |" in text
    assert "| bulk | — |" in text


def test_the_line_counter_counts_only_new_lines_at_each_call(tmp_path: Path) -> None:
    counter = LineCounter(tmp_path)
    (tmp_path / "1.log").write_text("1\n2\n")
    first = counter.count()
    with (tmp_path / "1.log").open("a") as log:
        log.write("3\n")
    (tmp_path / "2.log").write_text("4\n")

    assert (first, counter.count()) == (2, 4)


def test_peers_named_alone_run_beside_foundrys_default_on_their_store() -> None:
    keys = [system.key for system in systems_named("huey, celery,procrastinate")]

    assert keys == ["foundry", "foundry-pg", "huey", "celery", "procrastinate"]


def test_peers_named_with_foundry_keep_the_order_given() -> None:
    keys = [system.key for system in systems_named("huey,foundry,foundry0,huey")]

    assert keys == ["huey", "foundry", "foundry0"]


def test_foundry_options_go_to_the_foundry_columns_only() -> None:
    systems = systems_named("huey", ("--prefetch", "4"))

    assert systems[0].worker[-2:] == ("--prefetch", "4")
    assert "--prefetch" not in systems[1].worker


@pytest.mark.parametrize(
    ("names", "said"), [("huey,rq", "'rq', which the bench does not know"), (" , ", "no system")]
)
def test_an_unknown_or_empty_peers_list_says_which_systems_there_are(names: str, said: str) -> None:
    with pytest.raises(SystemExit, match=said) as raised:
        systems_named(names)

    assert "choose among foundry,foundry0,huey" in str(raised.value)


def test_the_peers_header_names_the_round_trip_floor_before_and_after_the_run() -> None:
    line = header(
        "2026-12-06 10:00-10:10 UTC", "Redis 7.0.15 on loopback", "AMD EPYC", [54.4, 131.6]
    )

    assert line.startswith("Measured 2026-12-06 10:00-10:10 UTC, Redis 7.0.15 on loopback, AMD")
    assert line.endswith(
        "a bare-socket LPUSH round trip to that Redis 54 / 132 µs (before / after)"
    )
