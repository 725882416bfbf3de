"""Dependency-free line charts as SVG (log-log axes), so every benchmark run can draw its plot.

panel = Panel("HiVAE encode", "frames", "clips/s", {"64px": [(16, 9.1), (32, 4.4)], "128px": [...]})
write_svg([panel, ...], "benchmarks/results/run_all.svg")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
WIDTH, HEIGHT, MARGIN = 360, 280, 56


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _log_range(values: list[float]) -> tuple[float, float]:
    low, high = math.log10(min(values)), math.log10(max(values))
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return low - pad, high + pad


def _ticks(low: float, high: float) -> list[float]:
    """Values 1, 2, 5 x 10^k inside [10^low, 10^high] (log10 bounds), thinned to at most 6."""
    ticks = [m * 10.0**k for k in range(math.floor(low), math.ceil(high) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if low <= math.log10(t) <= high]
    return ticks[:: max(1, math.ceil(len(ticks) / 6))]


def _panel_svg(panel: Panel, x0: float) -> list[str]:
    points = [(x, y) for series in panel.series.values() for x, y in series if x > 0 and y and y > 0]
    if not points:
        return []
    xlo, xhi = _log_range([p[0] for p in points])
    ylo, yhi = _log_range([p[1] for p in points])
    left, top, right, bottom = x0 + MARGIN, 30, x0 + WIDTH - 10, HEIGHT - 40

    def sx(x):
        return left + (math.log10(x) - xlo) / (xhi - xlo) * (right - left)

    def sy(y):
        return bottom - (math.log10(y) - ylo) / (yhi - ylo) * (bottom - top)

    out = [
        f'<text x="{(left + right) / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(panel.title)}</text>',
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#888"/>',
        f'<text x="{(left + right) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(panel.xlabel)}</text>',
        f'<text transform="translate({x0 + 12},{(top + bottom) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(panel.ylabel)}</text>",
    ]
    xs = sorted({p[0] for p in points})
    for x in xs if len(xs) <= 8 else _ticks(xlo, xhi):
        out.append(f'<text x="{sx(x):.1f}" y="{bottom + 14}" text-anchor="middle">{x:g}</text>')
    for y in _ticks(ylo, yhi):
        out.append(f'<line x1="{left}" x2="{right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for index, (label, series) in enumerate(panel.series.items()):
        colour = COLOURS[index % len(COLOURS)]
        valid = sorted((x, y) for x, y in series if x > 0 and y and y > 0)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in valid)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in valid]
        out.append(
            f'<text x="{right - 4}" y="{top + 14 + 14 * index}" text-anchor="end" fill="{colour}">{escape(label)}</text>'
        )
    return out


def write_svg(panels: list[Panel], path: str | Path) -> Path:
    """Draw `panels` side by side (log-log) into one SVG file; returns its path."""
    body = [line for i, panel in enumerate(panels) for line in _panel_svg(panel, i * WIDTH)]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH * len(panels)}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg)
    print(f"wrote {path.resolve()}")
    return path
