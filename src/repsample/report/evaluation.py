"""The evaluation section: the selection's figures against seeded random subsets of its size.

Reads the layout `repsample evaluate` writes (evaluate.py): per group ``selection`` {metric:
value} and ``random`` {metric: {mean, std}}, an ``overall`` with random means only, an
optional ``linear_probe``, and optional ``modes`` (per group and overall: modes covered); each
metric's label and direction come from the catalogue evaluate scores by (output.metrics).
parse() returns None for anything else, and optional_sections.py then shows the file
generically, so an older or hand-edited file never breaks the report.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repsample.output.metrics import METRICS, MODES, PROBE, Metric
from repsample.report import svg
from repsample.report.html import esc, table

BEATS, WITHIN, WORSE, UNKNOWN = "beats", "within", "worse", "none"  # also CSS classes
MAX_CHART_ROWS = 30


@dataclass(frozen=True)
class Figure:
    """One metric in one scope: the selection's value and random's mean and spread (std)."""

    selection: float | None
    mean: float | None
    std: float | None  # None: only a mean is known (the overall row)

    def verdict(self, lower_is_better: bool) -> str:
        """beats random by more than its spread, within the spread, or worse by more."""
        if self.selection is None or self.mean is None:
            return UNKNOWN
        gain = self.mean - self.selection if lower_is_better else self.selection - self.mean
        # A hair of tolerance: equal figures (0 and 0 near-duplicates) are "within", not "beats".
        margin = (self.std or 0.0) + 1e-9 * max(abs(self.mean), abs(self.selection), 1e-12)
        return BEATS if gain > margin else WORSE if gain < -margin else WITHIN


@dataclass(frozen=True)
class Scope:
    """Overall, or one group."""

    name: str
    images: int | None
    selected: int | None
    figures: dict[str, Figure]


@dataclass(frozen=True)
class ShownEvaluation:
    """evaluation.json as this section draws it (not evaluate.EvaluationResult: the file may be
    older or hand-edited, and drawing it must not import scikit-learn)."""

    seeds: int | None
    overall: Scope
    groups: list[Scope]
    probe: Figure | None
    probe_about: str
    modes_about: str = ""  # where the mode labels came from, and the modes each group missed


def parse(data: Mapping[str, Any]) -> ShownEvaluation | None:
    groups = data.get("groups")
    if not isinstance(groups, Mapping) or not groups:
        return None
    scopes = [_scope(str(name), g, g.get(MODES) if isinstance(g, Mapping) else None)
              for name, g in groups.items()]
    if any(s is None for s in scopes):
        return None
    overall = _scope("overall", data.get("overall"), data.get(MODES))
    if overall is None:
        return None
    probe_data = data.get(PROBE)
    probe, about = None, ""
    if isinstance(probe_data, Mapping):
        probe = Figure(_number(probe_data.get("selection")), *_random(probe_data.get("random")))
        tested = _number(probe_data.get("test_images"))
        about = (f"trained on the {probe_data.get('train_split', '?')} subsets, tested on "
                 f"{'all ' + str(int(tested)) if tested else 'the'} images of "
                 f"{probe_data.get('test_split', '?')}")
    seeds = _number(data.get("seeds"))
    return ShownEvaluation(int(seeds) if seeds else None, overall, [s for s in scopes if s], probe,
                           about, _modes_about(data))


def _modes_about(data: Mapping[str, Any]) -> str:
    """Plain text: the labels' source and, per group, the modes the selection missed."""
    modes = data.get(MODES)
    if not isinstance(modes, Mapping):
        return ""
    missed = []
    for name, g in data["groups"].items():
        held = g.get(MODES) if isinstance(g, Mapping) else None
        lacks = held.get("missed") if isinstance(held, Mapping) else None
        if isinstance(lacks, list) and lacks:
            shown = ", ".join(str(m) for m in lacks[:12]) + (" ..." if len(lacks) > 12 else "")
            missed.append(f"{name}: {shown}")
    return (f"Modes covered: distinct modes labelled by {modes.get('source', '?')} that the subset "
            "holds (higher is better). " + ("Missed: " + "; ".join(missed) + "." if missed
                                            else "Every labelled mode is held."))


def _scope(name: str, data: Any, modes: Any = None) -> Scope | None:
    if not isinstance(data, Mapping):
        return None
    mine, chance = data.get("selection"), data.get("random")
    if not isinstance(mine, Mapping) or not isinstance(chance, Mapping):
        return None
    names = [m for m in (*METRICS, *mine) if m in mine and m != PROBE]
    figures = {m: Figure(_number(mine.get(m)), *_random(chance.get(m))) for m in dict.fromkeys(names)}
    if isinstance(modes, Mapping):
        figures[MODES] = Figure(_number(modes.get("selection")), *_random(modes.get("random")))
    images, selected = _number(data.get("images")), _number(data.get("selected"))
    return Scope(name, None if images is None else int(images),
                 None if selected is None else int(selected), figures)


def _random(value: Any) -> tuple[float | None, float | None]:
    """(mean, std) from {mean, std}; a bare number is a mean with no known spread."""
    if isinstance(value, Mapping):
        return _number(value.get("mean")), _number(value.get("std"))
    return _number(value), None


def _number(value: Any) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


# -- rendering -----------------------------------------------------------------------------------


VERDICT_TEXT = {BEATS: "beats random", WITHIN: "within spread", WORSE: "worse than random",
                UNKNOWN: "no verdict"}
MEAN_ONLY_TEXT = {BEATS: "beats random mean", WITHIN: "equals random mean",
                  WORSE: "worse than random mean", UNKNOWN: "no verdict"}


def section(ev: ShownEvaluation, note: str = "") -> str:
    """note: HTML shown under the title (e.g. that the file does not say what it scored)."""
    metrics = _metrics(ev)
    seeds = f"{ev.seeds} seeded random subsets" if ev.seeds else "seeded random subsets"
    parts = ['<section class="card" id="evaluation"><h2>Evaluation against random</h2>', note,
             f'<p class="muted">Each figure of the selection is set against {esc(seeds)} of the same '
             "size per group: their mean ± spread (standard deviation). <b>Beats random</b>: better "
             "than the mean by more than the spread; <b>within spread</b>: no clearer than chance; "
             "<b>worse</b>: worse by more than the spread.</p>",
             _tally(ev, metrics),
             f'<p class="muted">{esc(ev.modes_about)}</p>' if ev.modes_about else "",
             _overall_table(ev, metrics), _charts(ev, metrics),
             "<h3>Per group</h3>", _group_table(ev, metrics), "</section>"]
    return "".join(parts)


def _metrics(ev: ShownEvaluation) -> list[str]:
    found = dict.fromkeys(m for s in (ev.overall, *ev.groups) for m in s.figures)
    return [m for m in found if any(s.figures.get(m, Figure(None, None, None)).selection is not None
                                    for s in (ev.overall, *ev.groups))]


def _metric(name: str) -> Metric:
    # A metric this report does not know yet: shown, but with no direction there is no verdict.
    return METRICS.get(name, Metric(name.replace("_", " "), True, "(unknown to this report)"))


def _verdicts(ev: ShownEvaluation, metrics: list[str]) -> list[str]:
    out = [s.figures[m].verdict(_metric(m).lower_is_better) for s in ev.groups for m in metrics
           if m in s.figures and m in METRICS]
    if ev.probe is not None:
        out.append(ev.probe.verdict(False))
    return out


def _tally(ev: ShownEvaluation, metrics: list[str]) -> str:
    verdicts = [v for v in _verdicts(ev, metrics) if v != UNKNOWN]
    if not verdicts:
        return ""
    counts = {v: verdicts.count(v) for v in (BEATS, WITHIN, WORSE)}
    tiles = "".join(f'<div class="tile verdict-{v}"><div class="v">{n}</div><div class="k">'
                    f"{esc(VERDICT_TEXT[v])}</div></div>" for v, n in counts.items())
    return (f'<div class="tiles">{tiles}</div><p class="muted">Counted over every group and metric'
            f"{' and the linear probe' if ev.probe is not None else ''} "
            f"({len(verdicts)} comparisons).</p>")


def pill(verdict: str, mean_only: bool = False) -> str:
    text = (MEAN_ONLY_TEXT if mean_only else VERDICT_TEXT)[verdict]
    return f'<span class="pill verdict-{verdict}">{esc(text)}</span>'


def _better(m: Metric) -> str:
    return "lower is better" if m.lower_is_better else "higher is better"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _random_text(f: Figure) -> str:
    if f.mean is None:
        return "-"
    if f.std is None:
        return f"{f.mean:.4g} (mean only)"
    spread = f.std if f.std > 1e-12 * max(abs(f.mean), 1.0) else 0.0  # float noise of equal draws
    return f"{f.mean:.4g} ± {spread:.2g}"


def _overall_table(ev: ShownEvaluation, metrics: list[str]) -> str:
    rows = []
    for m in metrics:
        info, fig = _metric(m), ev.overall.figures.get(m, Figure(None, None, None))
        verdict = fig.verdict(info.lower_is_better) if m in METRICS else UNKNOWN
        tally = [s.figures[m].verdict(info.lower_is_better) for s in ev.groups if m in s.figures]
        groups = (f"{tally.count(BEATS)} beat · {tally.count(WITHIN)} within · {tally.count(WORSE)} "
                  "worse" if m in METRICS else "")
        rows.append((f'<span title="{esc(info.about)}">{esc(info.label)}</span>', _better(info),
                     _fmt(fig.selection), _random_text(fig), pill(verdict, fig.std is None),
                     groups))
    if ev.probe is not None:
        info = METRICS[PROBE]
        rows.append((f'<span title="{esc(info.about)}">{esc(info.label)}</span>', _better(info),
                     _fmt(ev.probe.selection), _random_text(ev.probe),
                     pill(ev.probe.verdict(False), ev.probe.std is None), esc(ev.probe_about)))
    headers = ("metric", "better is", "selection", "random: mean ± spread", "verdict", "groups")
    note = ('<p class="muted">Overall: image-weighted means over the groups (coverage max: the '
            "worst group; modes covered: their sum); random has a mean there but no spread, so its "
            "verdict compares with the mean, and the groups column counts the per-group verdicts.</p>")
    return "<h3>Overall</h3>" + table(headers, rows, numeric=(2, 3), raw=(0, 4, 5)) + note


def _charts(ev: ShownEvaluation, metrics: list[str]) -> str:
    scopes = [ev.overall, *ev.groups][:MAX_CHART_ROWS]
    cut = len(ev.groups) + 1 - len(scopes)
    figures = []
    for m in metrics:
        info = _metric(m)
        rows = [(s.name, s.figures[m]) for s in scopes if m in s.figures]
        known = m in METRICS
        chart = svg.intervals([r[0] for r in rows], [r[1].selection for r in rows],
                              [r[1].mean for r in rows], [r[1].std for r in rows],
                              [r[1].verdict(info.lower_is_better) if known else UNKNOWN
                               for r in rows], info.lower_is_better if known else None)
        figures.append(_chart_figure(info, chart))
    if ev.probe is not None:
        info = METRICS[PROBE]
        chart = svg.intervals(["overall"], [ev.probe.selection], [ev.probe.mean], [ev.probe.std],
                              [ev.probe.verdict(False)], False)
        figures.append(_chart_figure(info, chart))
    more = (f'<p class="muted">Charts show the first {len(scopes) - 1} groups; the table has all '
            f"{len(ev.groups)}.</p>" if cut else "")
    legend = ('<div class="legend"><span><i class="sel"></i>selection (colour = verdict)</span>'
              '<span><i class="band"></i>random: mean ± spread</span></div>')
    return f'<h3>Selection against random</h3>{legend}<div class="charts">{"".join(figures)}</div>{more}'


def _chart_figure(info: Metric, chart: str) -> str:
    arrow = "↓" if info.lower_is_better else "↑"
    return (f'<figure><figcaption title="{esc(info.about)}">{esc(info.label)} · '
            f'<span class="better">{arrow} {esc(_better(info))}</span></figcaption>{chart}</figure>')


def _group_table(ev: ShownEvaluation, metrics: list[str]) -> str:
    headers = ["group", "selected", *(f"{_metric(m).label} {'↓' if _metric(m).lower_is_better else '↑'}"
                                      for m in metrics)]
    rows = []
    for s in ev.groups:
        size = f"{s.selected} of {s.images}" if s.selected is not None and s.images is not None else "-"
        cells = [_cell(s.figures.get(m), m) for m in metrics]
        rows.append((esc(s.name), esc(size), *cells))
    return table(headers, rows, numeric=(1,), raw=range(len(headers)))


def _cell(fig: Figure | None, metric: str) -> str:
    if fig is None or fig.selection is None:
        return '<span class="muted">-</span>'
    verdict = fig.verdict(_metric(metric).lower_is_better) if metric in METRICS else UNKNOWN
    return (f'<div class="fig"><b>{esc(_fmt(fig.selection))}</b> <span class="muted">vs '
            f"{esc(_random_text(fig))}</span></div>{pill(verdict, fig.std is None)}")
