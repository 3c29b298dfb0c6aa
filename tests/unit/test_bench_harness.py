"""The bench harness summarises samples the way the README's table claims."""

from __future__ import annotations

from bench.harness import Figure, Metric, percentile


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
