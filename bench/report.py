"""Bench results as JSON (every sample) and a markdown table (median and min-max)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Figure, Outcome, fmt

RESULTS = Path(__file__).parent / "results"
_MARK = {True: "yes", False: "**no**", None: ""}


def machine() -> dict[str, Any]:
    """The machine the figures come from."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _figure_row(figure: Figure) -> str:
    metric = figure.metric
    spread = f"{fmt(figure.low)}-{fmt(figure.high)}"
    met = _MARK[metric.meets(figure.median)]
    return (
        f"| {figure.workload} | {figure.backend} | {metric.label} | {fmt(figure.median)} "
        f"| {spread} | {metric.unit} | {metric.target_text} | {met} |"
    )


def markdown(outcomes: Sequence[Outcome], runs: int) -> str:
    """One table row per figure (median of ``runs``), then any workload that failed."""
    lines = [
        f"| workload | backend | metric | median of {runs} | min-max | unit | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        lines += [_figure_row(figure) for figure in outcome.figures]
    failed = [outcome for outcome in outcomes if outcome.error]
    if failed:
        lines.append("")
        for outcome in failed:
            last = (outcome.error or "").splitlines()[-1]
            lines.append(f"- {outcome.workload.name} ({outcome.backend}) did not finish: {last}")
    loads = [f"{o.load_before:.2f}/{o.load_after:.2f}" for o in outcomes]
    lines += ["", f"Load average (1 min) before/after each workload: {', '.join(loads)}"]
    return "\n".join(lines) + "\n"


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "workload": outcome.workload.name,
        "title": outcome.workload.title,
        "backend": outcome.backend,
        "seconds": round(outcome.seconds, 3),
        "load_before": outcome.load_before,
        "load_after": outcome.load_after,
        "error": outcome.error,
        "figures": [
            {
                "metric": figure.metric.key,
                "label": figure.metric.label,
                "unit": figure.metric.unit,
                "target": figure.metric.target,
                "met": figure.metric.meets(figure.median),
                "median": figure.median,
                "min": figure.low,
                "max": figure.high,
                "samples": list(figure.samples),
            }
            for figure in outcome.figures
        ],
    }


def save(outcomes: Sequence[Outcome], *, runs: int, quick: bool, redis_version: str) -> Path:
    """Write ``results/<time>.json`` and ``results/latest.md``; returns the JSON path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "at": stamp,
        "quick": quick,
        "runs": runs,
        "machine": {**machine(), "redis": redis_version},
        "outcomes": [_outcome_json(outcome) for outcome in outcomes],
    }
    path = RESULTS / f"{stamp}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(outcomes, runs))
    return path
