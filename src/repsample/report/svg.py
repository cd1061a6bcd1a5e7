"""Charts as inline SVG strings: no library, no network, every label escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repsample.report.html import esc as escape

# Tableau 20, reordered so neighbouring cluster numbers get distinct hues.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)


def color(cluster: int | None) -> str:
    return "#555555" if cluster is None or cluster < 0 else PALETTE[cluster % len(PALETTE)]


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            f'{body}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "tick") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'


def ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], int]:
    """Round values from at or below lo to at or above hi, steps of 1, 2, 2.5 or 5 x 10^n, and
    the decimals that print every one of them differently (a fixed "{:.2f}" repeats labels on a
    narrow range: 0.04, 0.04, 0.03)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        lo, hi = lo - (abs(lo) or 1.0) / 2, hi + (abs(hi) or 1.0) / 2
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    values = [round(i * step, 12) for i in range(first, last + 1)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6:  # 2.5 x 10^n
        decimals += 1
    return values, decimals


def line_chart(points: dict[int, float], marked: int | None, x_label: str, y_label: str,
               reference: tuple[float, str] | None = None, weak: bool = False,
               width: int = 360, height: int = 220) -> str:
    """A line over integer x (k), the marked x drawn as a ringed dot with a dashed guide.

    The y axis starts at zero (or below, for negative values) so a small range does not look
    like a big one; reference draws a labelled threshold line, which the axis always includes.
    weak: the mark is drawn grey and says the choice was close, not decisive.
    """
    xs = sorted(points)
    left, right, top, bottom = 46, 12, 14, 36
    ys = [points[x] for x in xs]
    lo, hi = min(0.0, *ys), max(0.0, *ys, reference[0] if reference else 0.0)
    values, decimals = ticks(lo, hi, 5)
    lo, hi = values[0], values[-1]
    x0, x1 = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (hi - y) / (hi - lo) * (height - top - bottom)

    parts = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
             'class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" class="axis"/>']
    for y in values:
        parts.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{width - right}" y2="{py(y):.1f}" '
                     'class="grid"/>')
        parts.append(_text(left - 4, py(y) + 4, f"{y:.{decimals}f}", "end"))
    if reference is not None:
        ry = py(reference[0])
        parts.append(f'<line x1="{left}" y1="{ry:.1f}" x2="{width - right}" y2="{ry:.1f}" '
                     'class="reference"/>')
        parts.append(_text(left + 4, ry + 12, reference[1], "start", "label"))
    step = max(1, math.ceil(len(xs) / 10))
    for x in xs[::step]:
        parts.append(_text(px(x), height - bottom + 14, str(x)))
    parts.append(_text((left + width - right) / 2, height - 4, x_label, cls="label"))
    parts.append(f'<text class="label" transform="translate(12 {(top + height - bottom) / 2:.0f}) '
                 f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f} {py(points[x]):.1f}" for i, x in enumerate(xs))
    parts.append(f'<path d="{path}" class="line"/>')
    parts.extend(f'<circle cx="{px(x):.1f}" cy="{py(points[x]):.1f}" r="2.5" class="dot">'
                 f"<title>k = {x}: {points[x]:.4f}</title></circle>" for x in xs)
    if marked is not None and marked in points:
        mx, my = px(marked), py(points[marked])
        state = " weak" if weak else ""
        parts.append(f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{height - bottom}" '
                     f'class="guide{state}"/>')
        parts.append(f'<circle cx="{mx:.1f}" cy="{my:.1f}" r="6" class="chosen{state}"/>')
        anchor = "end" if mx > (left + width) / 2 else "start"
        shift = -9 if anchor == "end" else 9
        text = f"chosen k = {marked}" + (" (a close call)" if weak else "")
        parts.append(_text(mx + shift, top + 10, text, anchor, "label" if weak else "label strong"))
    return _svg(width, height, "".join(parts), f"{y_label} against {x_label}")


def paired_bars(labels: Sequence[str], first: Sequence[float], second: Sequence[float],
                colors: Sequence[str], legend: tuple[str, str], width: int = 360) -> str:
    """Per label, two horizontal bars of shares (0..1): a pale one and a solid one."""
    row, left, right, top = 22, 70, 72, 26
    height = top + row * len(labels) + 8
    scale = max([*first, *second, 1e-9])
    bar_w = width - left - right
    parts = [
        f'<rect x="{left}" y="4" width="10" height="10" class="pale"/>',
        _text(left + 14, 13, legend[0], "start", "label"),
        f'<rect x="{left + 130}" y="4" width="10" height="10" class="solid"/>',
        _text(left + 144, 13, legend[1], "start", "label"),
    ]
    for i, (label, a, b, c) in enumerate(zip(labels, first, second, colors, strict=True)):
        y = top + i * row
        parts.append(f'<rect x="4" y="{y + 3}" width="10" height="10" fill="{c}"/>')
        parts.append(_text(18, y + 12, label, "start"))
        parts.append(f'<rect x="{left}" y="{y}" width="{bar_w * a / scale:.1f}" height="8" '
                     f'fill="{c}" opacity="0.35"/>')
        parts.append(f'<rect x="{left}" y="{y + 9}" width="{bar_w * b / scale:.1f}" height="8" '
                     f'fill="{c}"/>')
        parts.append(_text(left + bar_w * max(a, b) / scale + 4, y + 13, f"{a:.0%} / {b:.0%}", "start"))
    return _svg(width, height, "".join(parts), f"{legend[0]} and {legend[1]} per cluster")


@dataclass(frozen=True)
class Point:
    """A map point that names its image (an SVG <title>) and links to it (an anchor)."""

    index: int  # into the map's rows
    title: str
    target: str  # an id on the page


def scatter(xy: np.ndarray, clusters: Sequence[int | None], selected: Sequence[bool],
            named: Sequence[Point] = (), width: int = 360, height: int = 300) -> str:
    """Points as round zero-length path segments, one path per (cluster, kept): compact at
    thousands of points. Named points are drawn as linked circles with a title instead (a
    hover names the image, a click or Enter opens it). Kept images are larger, ringed and on top."""
    pad = 10
    sx = pad + xy[:, 0] * (width - 2 * pad)
    sy = pad + (1 - xy[:, 1]) * (height - 2 * pad)
    by_index = {p.index: p for p in named}
    paths: dict[tuple[bool, int | None], list[str]] = {}
    for i, (x, y, c, s) in enumerate(zip(sx, sy, clusters, selected, strict=True)):
        if i not in by_index:
            paths.setdefault((bool(s), c), []).append(f"M{x:.1f} {y:.1f}h0")
    parts = [f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" class="frame"/>']
    for (kept, c), segments in sorted(paths.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
        d = "".join(segments)
        if kept:
            parts.append(f'<path d="{d}" class="ring"/>')
            parts.append(f'<path d="{d}" stroke="{color(c)}" class="kept"/>')
        else:
            parts.append(f'<path d="{d}" stroke="{color(c)}" class="other"/>')
    for p in sorted(named, key=lambda p: bool(selected[p.index])):
        cls, r = ("pt pk", 3.5) if selected[p.index] else ("pt", 2.5)
        parts.append(f'<a href="#{escape(p.target)}"><circle cx="{sx[p.index]:.1f}" '
                     f'cy="{sy[p.index]:.1f}" r="{r}" class="{cls}" fill="{color(clusters[p.index])}">'
                     f"<title>{escape(p.title)}</title></circle></a>")
    body = "".join(parts)
    if len(xy) > 600:  # thousands of points: smaller marks so the kept ones stay distinct
        body = f'<g class="dense">{body}</g>'
    return _svg(width, height, body, "2-D map of the embeddings")


def bars(labels: Sequence[str], values: Sequence[float], width: int = 360,
         colors: Sequence[str] | None = None) -> str:
    """Plain horizontal bars with their values printed; negative values go left of the axis."""
    row, left, top = 20, 120, 4
    height = top + row * len(labels) + 4
    lo, hi = min([0.0, *values]), max([0.0, *values])
    span = hi - lo or 1.0
    plot = width - left - 60

    def px(v: float) -> float:
        return left + (v - lo) / span * plot

    parts = [f'<line x1="{px(0):.1f}" y1="0" x2="{px(0):.1f}" y2="{height}" class="axis"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        fill = colors[i] if colors else PALETTE[i % len(PALETTE)]
        x_a, x_b = sorted((px(0), px(value)))
        parts.append(_text(left - 6, y + 12, label, "end"))
        parts.append(f'<rect x="{x_a:.1f}" y="{y + 2}" width="{x_b - x_a:.1f}" height="13" fill="{fill}"/>')
        parts.append(_text(max(x_b, px(0)) + 4, y + 12, f"{value:.4g}", "start"))
    return _svg(width, height, "".join(parts), "bar chart")


def intervals(labels: Sequence[str], selection: Sequence[float | None], means: Sequence[float | None],
              stds: Sequence[float | None], verdicts: Sequence[str], lower_is_better: bool | None,
              width: int = 340) -> str:
    """Per label, random's mean ± spread as a grey band with a tick at the mean, and the
    selection as a dot coloured by its verdict (CSS class v-<verdict>). The better end of the
    axis is labelled; the axis spans the data, not zero, so small gaps stay visible."""
    row, left, right, top, bottom = 20, 112, 52, 18, 18
    height = top + row * len(labels) + bottom
    values = [v for v in (*selection, *means) if v is not None]
    values += [m + s * d for m, s in zip(means, stds, strict=True) if m is not None and s
               for d in (-1, 1)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if values and min(v for v in (*selection, *means) if v is not None) >= 0:
        lo = max(lo, 0.0)  # a figure that cannot go negative: the band stops at zero
    if hi - lo < 1e-12:
        lo, hi = (lo, lo + (abs(lo) or 1)) if lo >= 0 else (lo - abs(lo) / 2, hi + abs(hi) / 2)
    pad = (hi - lo) * 0.06
    lo, hi = lo - pad, hi + pad
    plot = width - left - right

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot

    parts = [f'<line x1="{left}" y1="{height - bottom}" x2="{left + plot}" y2="{height - bottom}" '
             'class="axis"/>']
    for count in (4, 6, 8):  # round values inside the axis, at least two where it can
        values, decimals = ticks(lo, hi, count)
        inside = [v for v in values if lo <= v <= hi]
        if len(inside) >= 2:
            break
    for v in inside:
        parts.append(_text(px(v), height - 5, f"{v:.{decimals}f}"))
    if lower_is_better is not None:
        hint = "← better" if lower_is_better else "better →"
        parts.append(_text(left if lower_is_better else left + plot, 11, hint,
                           "start" if lower_is_better else "end", "label strong"))
    for i, label in enumerate(labels):
        y = top + i * row + row / 2
        parts.append(_text(left - 6, y + 4, label if len(label) <= 18 else "…" + label[-17:], "end"))
        mean, std, mine = means[i], stds[i], selection[i]
        if mean is not None:
            a, b = px(max(mean - (std or 0), lo)), px(mean + (std or 0))
            parts.append(f'<rect x="{a:.1f}" y="{y - 5:.1f}" width="{max(b - a, 1.5):.1f}" height="10" '
                         'class="band"/>')
            parts.append(f'<line x1="{px(mean):.1f}" y1="{y - 7:.1f}" x2="{px(mean):.1f}" '
                         f'y2="{y + 7:.1f}" class="mean"/>')
        if mine is not None:
            parts.append(f'<circle cx="{px(mine):.1f}" cy="{y:.1f}" r="5" class="sel v-{verdicts[i]}">'
                         f"<title>{escape(label)}: {mine:.4g}</title></circle>")
            parts.append(_text(left + plot + 6, y + 4, f"{mine:.3g}", "start"))
    return _svg(width, height, "".join(parts), "selection against random, per group")
