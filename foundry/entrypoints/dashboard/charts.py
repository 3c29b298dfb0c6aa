"""Line charts as SVG path data, drawn on the server: no script library, nothing to fetch."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class Line:
    """One series: its CSS class, legend label and SVG path (gaps where values are None)."""

    css: str
    label: str
    path: str


@attrs.frozen
class Chart:
    """A chart of ``width`` x ``height`` whose top edge is ``top`` (in ``unit``)."""

    title: str
    width: int
    height: int
    top: float
    unit: str
    lines: tuple[Line, ...]
    empty: bool


def _nice_top(peak: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``peak`` (1 for an empty chart)."""
    if peak <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= peak:
        scale *= 10
    while scale > peak:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= peak:
            return step * scale
    return 10 * scale  # pragma: no cover - the loop above always returns


def path(values: Sequence[float | None], width: int, height: int, top: float) -> str:
    """SVG path data through ``values``, evenly spread over ``width``; a None breaks the line."""
    step = width / max(len(values) - 1, 1)
    parts: list[str] = []
    drawing = False
    for index, value in enumerate(values):
        if value is None:
            drawing = False
            continue
        x = index * step
        y = height - min(value / top, 1.0) * height
        parts.append(f"{'L' if drawing else 'M'}{x:.1f},{y:.1f}")
        drawing = True
    return " ".join(parts)


def chart(
    title: str,
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    unit: str,
    width: int = 600,
    height: int = 120,
) -> Chart:
    """A chart of ``series`` (css class, label, values) sharing one scale."""
    known = [value for _, _, values in series for value in values if value is not None]
    top = _nice_top(max(known, default=0.0))
    lines = tuple(
        Line(css, label, path(values, width, height, top)) for css, label, values in series
    )
    return Chart(title, width, height, top, unit, lines, empty=not known)
