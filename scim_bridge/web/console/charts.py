"""Small line charts as inline SVG, drawn on the server: no chart library in the browser.

Each chart has a title and a text summary (role="img", aria-labelledby) for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 360, 96, 4


def line_chart(ident: str, title: str, points: Sequence[tuple[float, float]], unit: str) -> Markup:
    """points: (epoch seconds, value), oldest first."""
    label = f"{title}: no samples yet"
    if points:
        values = [v for _, v in points]
        label = f"{title}: now {_num(values[-1])} {unit}, highest {_num(max(values))} {unit} over the period"
    head = (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="chart" id="{escape(ident)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-labelledby="{escape(ident)}-t {escape(ident)}-d">'
        f'<title id="{escape(ident)}-t">{escape(title)}</title><desc id="{escape(ident)}-d">{escape(label)}</desc>'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff" stroke="#8a8f98"/>'
    )
    if len(points) < 2:
        body = (
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#3b3f46" font-size="12">'
            "collecting samples…</text>"
        )
        return Markup(head + body + "</svg></figure>")
    start, end = points[0][0], points[-1][0]
    top = max(v for _, v in points) or 1.0
    span = (end - start) or 1.0
    coords = " ".join(
        f"{PAD + (t - start) / span * (WIDTH - 2 * PAD):.1f},{HEIGHT - PAD - v / top * (HEIGHT - 2 * PAD - 14):.1f}"
        for t, v in points
    )
    minutes = (end - start) / 60
    period = f"last {minutes:.0f} min" if minutes < 90 else f"last {minutes / 60:.1f} h"
    body = (
        f'<polyline points="{coords}" fill="none" stroke="#1d4ed8" stroke-width="2"/>'
        f'<text x="{PAD + 2}" y="13" fill="#1f2328" font-size="11">max {escape(_num(top))} {escape(unit)}</text>'
        f'<text x="{WIDTH - PAD - 2}" y="13" text-anchor="end" fill="#1f2328" font-size="11">'
        f"{period}</text>"
    )
    return Markup(head + body + "</svg></figure>")


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
