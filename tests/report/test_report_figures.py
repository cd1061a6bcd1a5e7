"""Honest figures: axes that start at zero, tick labels that differ, and a plain-words note where
the clustering is weak (best silhouette under 0.25), with what keeps the selection representative."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from itertools import pairwise
from pathlib import Path

import pytest
from test_report import selection  # noqa: F401  (the shared real run)

from repsample.output.outcome import GroupResult
from repsample.report import build_report, svg
from repsample.report.evaluation import Figure
from repsample.report.gather import Item, ReportGroup
from repsample.report.groups import WEAK_SILHOUETTE, is_weak, share_gap, weak_note


def tick_labels(chart: str) -> list[str]:
    return re.findall(r'text-anchor="end" class="tick">([^<]*)</text>', chart)


@pytest.mark.parametrize("lo, hi", [(0.031, 0.041), (0.03, 0.11), (-0.2, 0.6), (0.0, 1e-6),
                                    (12.0, 12.0), (1234.0, 98765.0)])
def test_ticks_are_round_cover_the_range_and_print_differently(lo: float, hi: float) -> None:
    values, decimals = svg.ticks(lo, hi, 5)
    labels = [f"{v:.{decimals}f}" for v in values]
    assert len(set(labels)) == len(labels) >= 3
    assert values[0] <= lo and values[-1] >= hi
    steps = {round(b - a, 12) for a, b in pairwise(values)}
    assert len(steps) == 1  # evenly spaced


def test_the_silhouette_axis_starts_at_zero_and_shows_the_threshold() -> None:
    # The example's groups: 0.03 to 0.11. "{:.2f}" on a data-fitted axis printed 0.04, 0.04, 0.03.
    points = {5: 0.0412, 6: 0.0398, 7: 0.0405, 8: 0.0371, 9: 0.0366}
    chart = svg.line_chart(points, 5, "k", "silhouette", reference=(WEAK_SILHOUETTE, "weak below"),
                           weak=True)
    labels = tick_labels(chart)
    assert labels[0] == "0.0" and float(labels[-1]) >= WEAK_SILHOUETTE
    assert len(set(labels)) == len(labels)
    assert 'class="reference"' in chart and "weak below" in chart
    assert "chosen k = 5 (a close call)" in chart and 'class="chosen weak"' in chart
    strong = svg.line_chart({2: 0.62, 3: 0.41}, 2, "k", "silhouette")
    assert "chosen k = 2</text>" in strong and "close call" not in strong


def group(silhouettes: dict[int, float], kept_per_cluster: tuple[int, ...]) -> ReportGroup:
    items = []
    for c, kept in enumerate(kept_per_cluster):
        for i in range(10):
            items.append(Item(f"g/{c}_{i}.jpg", "g", "selected" if i < kept else "not_selected",
                              c, float(i), 1 + i if i < kept else None, f"{c:032x}{i:032x}", ""))
    selected = sum(i.status == "selected" for i in items)
    return ReportGroup(items, GroupResult("g", len(items), 0, selected, 6, silhouettes, None, {}))


def test_weak_note_says_why_in_plain_words() -> None:
    weak = group({5: 0.05, 6: 0.07, 7: 0.06}, (2, 2, 2))
    assert is_weak(weak) and not is_weak(group({5: 0.31}, (2,)))
    assert share_gap(weak) == pytest.approx(0.0)
    text = unescape(re.sub(r"<[^>]+>", "", weak_note(weak, Figure(0.012, 0.020, 0.003))))
    assert "best silhouette is 0.07, under 0.25" in text
    assert "between 0.05 and 0.07, so k = 6 was a close call" in text
    assert "cluster shares differ from the group's by 0%" in text
    assert "MMD 0.012) is closer than random subsets of the same size (0.02 ± 0.003)" in text
    skewed = unescape(weak_note(group({5: 0.1}, (4, 1, 1)), None))
    assert "differ from the group's by 33%" in skewed and "repsample evaluate OUTPUT" not in skewed
    no_evaluation = weak_note(group({5: 0.1}, (0, 0, 0)), None)
    assert "Run <code>repsample evaluate OUTPUT</code>" in no_evaluation


def test_a_weak_group_in_a_real_report(selection: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "weak"
    shutil.copytree(selection, out)
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    cats = record["groups"]["train/cats"]
    cats["silhouette"] = {str(k): 0.03 + 0.01 * (k == cats["k"]) for k in (2, 3, 4)}
    (out / "run.json").write_text(json.dumps(record), encoding="utf-8")
    html = build_report(out).read_text(encoding="utf-8")
    cats_part = html[html.index('id="g0"'):html.index('id="g1"')]
    assert "weak clustering" in cats_part and "<b>Weak clustering.</b>" in cats_part
    assert "0.040 (weak)" in html  # the groups table
    dogs_part = html[html.index('id="g1"'):]
    assert "Weak clustering." not in dogs_part  # its silhouettes are over 0.25
    for chart in re.findall(r"<svg.*?</svg>", html, re.S):
        labels = tick_labels(chart)
        assert len(set(labels)) == len(labels), labels


@pytest.mark.parametrize("means", [(1.07, 5.13), (0.6, 16.0), (0.13, 0.24)])
def test_the_evaluation_axis_has_at_least_two_distinct_round_labels(means: tuple[float, float]) -> None:
    chart = svg.intervals(["a", "b"], [means[0] * 0.9, means[1] * 0.8], list(means), [0.01, 0.02],
                          ["beats", "beats"], lower_is_better=True)
    labels = re.findall(r'text-anchor="middle" class="tick">([^<]*)</text>', chart)
    assert len(labels) >= 2 and len(set(labels)) == len(labels)
