"""Charts drawn on the server as inline SVG: no script, no library to download, readable by screen readers.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` saying in words what it shows, and a
`<title>` on every bar and point (the browser shows it on hover; a screen reader reads it). The page puts
the same figures in a table beside the chart, so nothing is only in the picture.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 54  # room for the axis labels and the legend
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


def _nice_max(value: float) -> float:
    """A round top for the axis (1, 2, 5 × 10^n) at or above `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{int(value):,}".replace(",", ".") if float(value).is_integer() else f"{value:.1f}".replace(".", ",")


def _frame(title: str, description: str, body: list[str], legend: Sequence[Series] = ()) -> Markup:
    n = next(_ids)
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
             f'role="img" aria-labelledby="chart-{n}-title chart-{n}-desc" xmlns="http://www.w3.org/2000/svg">'),
             f'<title id="chart-{n}-title">{escape(title)}</title>', f'<desc id="chart-{n}-desc">{escape(description)}</desc>']
    parts += body
    x = LEFT
    for series in legend:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="11" height="11" fill="{series.color}"/>'
                     f'<text x="{x + 15}" y="{HEIGHT - 6}" font-size="12" fill="#1d2733">{escape(series.label)}</text>')
        x += 24 + 7 * len(series.label)
    parts.append("</svg>")
    return Markup("".join(parts))


def _y_axis(top: float, unit: str = "") -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d8dee6" stroke-width="1"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6673">'
                     f'{_number(value)}{unit}</text>')
    return parts


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    """Every label when they fit, else every n-th (the table lists them all)."""
    widest = max((len(label) for label in labels), default=0) * 6.5 + 10  # 11px text: ~6.5px a character
    every = max(1, math.ceil(len(labels) * widest / (WIDTH - LEFT - RIGHT)))
    y = HEIGHT - BOTTOM + 15
    return [f'<text x="{LEFT + slot * (i + 0.5):.1f}" y="{y}" font-size="11" text-anchor="middle" fill="#5b6673">{escape(label)}</text>'
            for i, label in enumerate(labels) if i % every == 0]


def stacked_bars(title: str, labels: Sequence[str], values: Sequence[dict[str, int]], series: Sequence[Series],
                 description: str = "") -> Markup:
    """One bar per label (a day), stacked by series (the outcomes), with a legend."""
    totals = [sum(v.get(s.key, 0) for s in series) for v in values]
    if not description:
        description = (f"{len(labels)} cột, mỗi cột là một ngày; tổng {_number(sum(totals))}, "
                       f"cao nhất {_number(max(totals, default=0))} trong một ngày.")
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    bar = max(1.0, slot * 0.7)
    body = _y_axis(top)
    for i, (label, counts) in enumerate(zip(labels, values, strict=True)):
        y = TOP + plot_h
        x = LEFT + slot * i + (slot - bar) / 2
        for s in series:
            count = counts.get(s.key, 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{s.color}">'
                        f'<title>{escape(label)}: {escape(s.label)} {_number(count)}</title></rect>')
    body += _x_labels(labels, slot)
    return _frame(title, description, body, series)


def line(title: str, labels: Sequence[str], values: Sequence[float | None], unit: str = "%", top: float = 100,
         color: str = "#0b5cad", description: str = "") -> Markup:
    """A line through the points that have a value (a gap where there is none), on a 0..top axis."""
    known = [v for v in values if v is not None]
    if not description:
        description = (f"{len(known)} điểm có số liệu trên {len(labels)}; thấp nhất {_number(min(known))}{unit}, "
                       f"cao nhất {_number(max(known))}{unit}." if known else "Chưa có số liệu trong kỳ này.")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    body = _y_axis(top, unit)
    path: list[str] = []
    points: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        if value is None:
            if len(path) > 1:
                body.append(_polyline(path, color))
            path = []
            continue
        x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * min(value, top) / top
        path.append(f"{x:.1f},{y:.1f}")
        points.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                      f'<title>{escape(label)}: {_number(value)}{unit}</title></circle>')
    if len(path) > 1:
        body.append(_polyline(path, color))
    body += points
    body += _x_labels(labels, slot)
    return _frame(title, description, body)


def _polyline(points: list[str], color: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>'
