"""Inline SVG charts (no JavaScript, no external assets): bars, CDF lines, scatter, time lines."""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH, HEIGHT = 680, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 30, 44


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _frame(
    title: str,
    x_label: str,
    y_label: str,
    body: list[str],
    y_max: float,
    x_ticks: list[tuple[float, str]],
    legend: list[tuple[str, str]],
) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="18" class="t">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#ccc"/>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="a">{_fmt(value)}</text>'
        )
    for x, label in x_ticks:
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" class="a">'
            f"{escape(label)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" class="a">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" class="a" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    parts.extend(body)
    for i, (label, fill) in enumerate(legend):
        y = TOP + 8 + i * 18
        x = WIDTH - RIGHT + 12
        parts.append(f'<rect x="{x}" y="{y - 9}" width="11" height="11" fill="{fill}"/>')
        parts.append(f'<text x="{x + 16}" y="{y + 1}" class="a">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def empty(title: str, message: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 60" '
        f'width="{WIDTH}" height="60" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="10" y="34" class="a">{escape(title)}: {escape(message)}</text></svg>'
    )


def grouped_bars(
    title: str,
    y_label: str,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], float | None],
) -> str:
    """Bars per group (x) and series (colour); missing values are left out."""
    present = [v for v in values.values() if v is not None]
    if not groups or not present:
        return empty(title, "no data")
    y_max = _nice_max(max(present))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(groups)
    bar = slot * 0.8 / max(1, len(series))
    body, ticks = [], []
    for g, group in enumerate(groups):
        ticks.append((LEFT + slot * (g + 0.5), group))
        for s, name in enumerate(series):
            value = values.get((group, name))
            if value is None:
                continue
            height = plot_h * value / y_max
            x = LEFT + slot * g + slot * 0.1 + bar * s
            body.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{color(s)}"><title>{escape(group)} {escape(name)}: '
                f"{_fmt(value)}</title></rect>"
            )
    legend = [(name, color(s)) for s, name in enumerate(series)] if len(series) > 1 else []
    return _frame(title, "", y_label, body, y_max, ticks, legend)


def cdf(title: str, x_label: str, series: dict[str, list[float]]) -> str:
    """Empirical cumulative distribution per series (share of requests at or below x)."""
    present = {name: sorted(v) for name, v in series.items() if v}
    if not present:
        return empty(title, "no data")
    x_max = _nice_max(max(v[-1] for v in present.values()))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = []
    for i, (name, values) in enumerate(present.items()):
        points = [f"{LEFT:.1f},{TOP + plot_h:.1f}"]
        for rank, value in enumerate(values, 1):
            x = LEFT + plot_w * value / x_max
            points.append(f"{x:.1f},{TOP + plot_h - plot_h * (rank - 1) / len(values):.1f}")
            points.append(f"{x:.1f},{TOP + plot_h - plot_h * rank / len(values):.1f}")
        body.append(
            f'<polyline fill="none" stroke="{color(i)}" stroke-width="2" '
            f'points="{" ".join(points)}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    ticks = [(LEFT + plot_w * i / 4, _fmt(x_max * i / 4)) for i in range(5)]
    legend = [(name, color(i)) for i, name in enumerate(present)]
    frame = _frame(title, x_label, "share of requests", body, 1.0, ticks, legend)
    return frame


def scatter(
    title: str,
    x_label: str,
    y_label: str,
    points: list[tuple[str, float, float, float | None, float | None]],
) -> str:
    """Labelled points (label, x, y, y_low, y_high) with vertical interval bars."""
    if not points:
        return empty(title, "no model has both a cost and ratings")
    x_max = _nice_max(max(p[1] for p in points) * 1.1)
    y_max = 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = []
    for i, (label, x_value, y_value, low, high) in enumerate(points):
        x = LEFT + plot_w * x_value / x_max
        y = TOP + plot_h - plot_h * y_value / y_max
        if low is not None and high is not None:
            y_low = TOP + plot_h - plot_h * max(0.0, low) / y_max
            y_high = TOP + plot_h - plot_h * min(1.0, high) / y_max
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_low:.1f}" y2="{y_high:.1f}" '
                f'stroke="{color(i)}" stroke-width="2"/>'
            )
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{color(i)}"><title>{escape(label)}: '
            f"{_fmt(x_value)} USD, {y_value:.2f}</title></circle>"
        )
        body.append(f'<text x="{x + 9:.1f}" y="{y - 8:.1f}" class="a">{escape(label)}</text>')
    ticks = [(LEFT + plot_w * i / 4, _fmt(x_max * i / 4)) for i in range(5)]
    return _frame(title, x_label, y_label, body, y_max, ticks, [])


def time_lines(
    title: str, y_label: str, starts: list[float], bin_s: float, series: dict[str, list[float]]
) -> str:
    """One line per series over time bins; x ticks in seconds since the first bin."""
    if not starts or not series:
        return empty(title, "no data")
    y_max = _nice_max(max(max(v) for v in series.values()) or 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(starts)
    step = plot_w / max(1, count)
    body = []
    for i, (name, values) in enumerate(series.items()):
        points = " ".join(
            f"{LEFT + step * (k + 0.5):.1f},{TOP + plot_h - plot_h * v / y_max:.1f}"
            for k, v in enumerate(values)
        )
        body.append(
            f'<polyline fill="none" stroke="{color(i)}" stroke-width="2" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for k, value in enumerate(values):
            if value:
                body.append(
                    f'<circle cx="{LEFT + step * (k + 0.5):.1f}" '
                    f'cy="{TOP + plot_h - plot_h * value / y_max:.1f}" r="3" fill="{color(i)}">'
                    f"<title>{escape(name)}: {value:g} at +{k * bin_s:g} s</title></circle>"
                )
    tick_every = max(1, count // 6)
    ticks = [(LEFT + step * (k + 0.5), f"+{k * bin_s:g}s") for k in range(0, count, tick_every)]
    legend = [(name, color(i)) for i, name in enumerate(series)]
    return _frame(
        title, f"time since start (bins of {bin_s:g} s)", y_label, body, y_max, ticks, legend
    )


def histogram(
    title: str, x_label: str, values: list[float], bins: int = 20, fill: str = PALETTE[0]
) -> str:
    if not values:
        return empty(title, "no data")
    top = _nice_max(max(values))
    width = top / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value // width))] += 1
    y_max = _nice_max(max(counts))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / bins
    body = []
    for index, count in enumerate(counts):
        if not count:
            continue
        height = plot_h * count / y_max
        body.append(
            f'<rect x="{LEFT + slot * index + 1:.1f}" y="{TOP + plot_h - height:.1f}" '
            f'width="{slot - 2:.1f}" height="{height:.1f}" fill="{fill}"><title>'
            f"{_fmt(index * width)}-{_fmt((index + 1) * width)}: {count}</title></rect>"
        )
    ticks = [(LEFT + plot_w * i / 4, _fmt(top * i / 4)) for i in range(5)]
    return _frame(title, x_label, "requests", body, y_max, ticks, [])


def interval_bars(
    title: str,
    y_label: str,
    groups: list[str],
    series: list[str],
    values: dict[tuple[str, str], tuple[float, float | None, float | None]],
) -> str:
    """Bars in 0-1 per group (x) and series (colour), each with its 95 % interval as a whisker
    (`values`: (mean, low, high)); missing values are left out."""
    if not groups or not values:
        return empty(title, "no data")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(groups)
    bar = slot * 0.8 / max(1, len(series))
    body, ticks = [], []

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * min(1.0, max(0.0, value))

    for g, group in enumerate(groups):
        ticks.append((LEFT + slot * (g + 0.5), group))
        for s, name in enumerate(series):
            if (group, name) not in values:
                continue
            mean, low, high = values[(group, name)]
            x = LEFT + slot * g + slot * 0.1 + bar * s
            interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
            body.append(
                f'<rect x="{x:.1f}" y="{y(mean):.1f}" width="{bar:.1f}" '
                f'height="{TOP + plot_h - y(mean):.1f}" fill="{color(s)}"><title>{escape(group)} '
                f"{escape(name)}: {mean:.2f}{interval}</title></rect>"
            )
            if low is not None and high is not None:
                centre, cap = x + bar / 2, min(6.0, bar / 3)
                body.append(
                    f'<path d="M{centre:.1f} {y(low):.1f}V{y(high):.1f}'
                    f"M{centre - cap:.1f} {y(low):.1f}H{centre + cap:.1f}"
                    f'M{centre - cap:.1f} {y(high):.1f}H{centre + cap:.1f}" '
                    'stroke="#222" stroke-width="1.5" fill="none"/>'
                )
    legend = [(name, color(s)) for s, name in enumerate(series)] if len(series) > 1 else []
    return _frame(title, "", y_label, body, 1.0, ticks, legend)
