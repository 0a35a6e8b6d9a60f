"""Charts as inline SVG, drawn on the server: no script, no build step, readable by tests.

Every bar carries a <title> (the browser's tooltip) and data-* attributes with the figure
it stands for, so a reader can hover and a test can check the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 34


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[float]


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 4, 6, 8 x 10^k at or above `value` (axis tops people read)."""
    if value <= 0:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 4, 6, 8, 10):  # halves stay whole numbers
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _frame(top: float, labels: Sequence[str], label_every: int) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     f'stroke="#e3e8ee" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="axis">{escape(_fmt(top * fraction))}</text>')
    slot = plot_w / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % label_every == 0 or i == len(labels) - 1:
            x = LEFT + slot * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'class="axis">{escape(label)}</text>')
    return parts


def _svg(title: str, body: list[str], legend: Sequence[Series]) -> Markup:
    # swatches drawn in SVG: the page's CSP allows no inline style attributes
    keys = "".join(f'<span class="key"><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
                   f'<rect width="10" height="10" rx="2" fill="{escape(s.color)}"/></svg>'
                   f"{escape(s.label)}</span>" for s in legend)
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}'
                  f'<span class="legend">{keys}</span></figcaption>'
                  f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
                  f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg></figure>')


def daily_bars(title: str, days: Sequence[date], series: Sequence[Series]) -> Markup:
    """Stacked bars, one per day, one colour per series."""
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    body = _frame(top, [d.strftime("%m-%d") for d in days], max(1, len(days) // 7))
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base: float = TOP + plot_h
        for s in series:
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            text = f"{day.isoformat()}: {_fmt(value)} {s.label}"
            body.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{escape(s.color)}" rx="1.5" data-day="{day.isoformat()}" '
                        f'data-series="{escape(s.label)}" data-value="{value:g}">'
                        f"<title>{escape(text)}</title></rect>")
    if not any(totals):
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
                    f'class="empty">nothing in these {len(days)} days</text>')
    return _svg(title, body, series)


@dataclass(frozen=True)
class RunBar:
    label: str        # when the run started
    seconds: float
    failed: bool


def run_durations(title: str, runs: Sequence[RunBar]) -> Markup:
    """One bar per sync run, oldest first: how long it took, red when it failed."""
    ok, bad = Series("succeeded", "#3b82f6", []), Series("failed", "#e5484d", [])
    top = _nice_max(max((r.seconds for r in runs), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(runs))
    bar_w = max(2.0, slot * 0.7)
    body = _frame(top, [r.label for r in runs], max(1, len(runs) // 6))
    for i, run in enumerate(runs):
        h = max(1.0, plot_h * run.seconds / top)
        x = LEFT + slot * i + (slot - bar_w) / 2
        color = bad.color if run.failed else ok.color
        text = f"{run.label}: {run.seconds:.1f} s" + (" (failed)" if run.failed else "")
        body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                    f'height="{h:.1f}" fill="{color}" rx="1.5" data-value="{run.seconds:g}">'
                    f"<title>{escape(text)}</title></rect>")
    if not runs:
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
                    f'class="empty">no finished runs yet</text>')
    return _svg(title, body, [ok, bad])
