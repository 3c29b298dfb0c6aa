"""Foundry's benchmarks (not tests): the workloads of docs/performance.md, run by ``./dev bench``.

Every figure is the median of several runs with its min-max; results go to ``bench/results/``
as JSON and a markdown table. Speed is measured here only, never asserted in tests.
"""
