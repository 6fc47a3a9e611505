"""Charts drawn on the server as SVG: time series (lines) and breakdowns (horizontal bars).

No chart library and nothing fetched at run time; the page shows the SVG in an <img>, where
it cannot run scripts, and every label is XML-escaped here as well.
"""
from __future__ import annotations

from html import escape
from typing import Sequence

PALETTE = ("#1f5fbf", "#b54708", "#067647", "#b42318", "#6941c6", "#5b6472")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 48


def _fmt(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}"


def _frame(title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>'
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="600" fill="#1d2430">{escape(title)}</text>'
        + "".join(body) + "</svg>"
    )


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    """One line per series over shared x labels (days); None leaves a gap."""
    if not labels or not series:
        return _frame(title, [f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#5b6472">No data for these filters.</text>'])
    values = [v for s in series.values() for v in s if v is not None]
    top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#d5dae1"/>']
    for frac in (0.0, 0.5, 1.0):
        v = top * frac
        body.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#5b6472">{escape(_fmt(v))}</text>')
        body.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" y2="{y(v):.1f}" stroke="#eef0f3"/>')
    every = max(1, len(labels) // 6)
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            body.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" fill="#5b6472">{escape(label[5:] if len(label) == 10 else label)}</text>')
    for n, (name, points) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        path: list[str] = []
        for i, v in enumerate(points):
            if v is None:
                continue
            path.append(f"{'M' if not path else 'L'}{x(i):.1f},{y(v):.1f}")
            body.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{escape(name)} {escape(labels[i])}: {escape(_fmt(v))}</title></circle>')
        if path:
            body.append(f'<path class="series" d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        lx = LEFT + n * 150
        body.append(f'<rect x="{lx}" y="{HEIGHT - 18}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{lx + 14}" y="{HEIGHT - 9}" fill="#1d2430">{escape(name[:20])}</text>')
    return _frame(title, body)


def bar_chart(title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, largest first as given."""
    if not items:
        return _frame(title, [f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#5b6472">No data for these filters.</text>'])
    rows = list(items)[:15]
    label_w, bar_h, gap = 170, 16, 6
    height = TOP + len(rows) * (bar_h + gap) + 16
    top = max(v for _, v in rows) or 1.0
    plot_w = WIDTH - label_w - RIGHT - 60
    body = []
    for i, (label, value) in enumerate(rows):
        yy = TOP + i * (bar_h + gap)
        w = max(1.0, value / top * plot_w) if value > 0 else 0.0
        body.append(f'<text x="{label_w - 6}" y="{yy + 12}" text-anchor="end" fill="#1d2430">{escape(str(label)[:26])}</text>')
        body.append(f'<rect class="bar" x="{label_w}" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{PALETTE[0]}"><title>{escape(str(label))}: {escape(_fmt(value))}{escape(unit)}</title></rect>')
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{yy + 12}" fill="#5b6472">{escape(_fmt(value))}{escape(unit)}</text>')
    return _frame(title, body, height)
