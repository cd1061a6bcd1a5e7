"""Per-image scores in the report (issue 15's manifest columns): on hover, in the enlarged view, in
the image list, and an outlier gallery per group; nothing of it when the columns are absent.

test_report's real select run, then its manifest rewritten with score columns of known values, so
the report is tested whether or not this repsample's select writes them yet.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import shutil
from html import unescape
from pathlib import Path

import pytest
from test_report import selection  # noqa: F401  (the fixture below uses it)

from repsample.output.layout import MANIFEST_FIELDS
from repsample.output.records import read_scores
from repsample.report import build_report, write_report
from repsample.report.gather import read_run_data

SCORE_FIELDS = ("typicality", "outlier_score", "uniqueness", "duplicate_similarity", "reason")


@pytest.fixture
def plain(selection: Path) -> Path:  # noqa: F811
    """test_report's real select run (read only: each test works on a copy)."""
    return selection


def scored_manifest(source: Path, target: Path) -> dict[str, dict[str, str]]:
    """source's rows with scores: outlier_score rises with the row's order, except that one
    not-kept image of each group is set aside as an outlier with a middling score."""
    with open(source, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fields = [*MANIFEST_FIELDS, *(f for f in SCORE_FIELDS if f not in MANIFEST_FIELDS)]
    aside: set[str] = set()
    for n, row in enumerate(rows):
        valid = row["status"] != "error"
        row.update(typicality=f"{1 - n / 100:.2f}" if valid else "",
                   outlier_score=f"{n / 100:.2f}" if valid else "",
                   uniqueness=f"{n / 50:.2f}" if valid else "",
                   duplicate_similarity="0.97" if n == 3 else "", reason="")
        if row["status"] == "not_selected" and row["group"] not in aside and n % 2:
            aside.add(row["group"])
            row.update(reason="outlier", outlier_score="0.05")
    with open(target, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return {row["path"]: row for row in rows}


def report_with_scores(plain: Path, tmp_path: Path) -> tuple[str, dict[str, dict[str, str]]]:
    out = tmp_path / "out"
    shutil.copytree(plain, out)
    rows = scored_manifest(plain / "manifest.csv", tmp_path / "scored.csv")
    scores, columns = read_scores(tmp_path / "scored.csv")
    data = dataclasses.replace(read_run_data(out), scores=scores, score_columns=columns)
    html = write_report(data, projection="pca").read_text(encoding="utf-8")
    return html, rows


def gallery(html: str, group: int) -> list[str]:
    """File names in group's outlier gallery, in order."""
    start = html.index(f'<details class="card group" id="g{group}"')
    part = html[start:]
    part = part[part.index('<div class="cluster outliers">'):]
    part = part[:part.index('<details class="cluster"')]
    return [unescape(n) for n in re.findall(r"<figcaption>(.*?)</figcaption>", part)]


def test_outlier_gallery_puts_set_aside_images_first_then_by_score(plain: Path, tmp_path: Path) -> None:
    html, rows = report_with_scores(plain, tmp_path)
    for g, name in enumerate(("train/cats", "train/dogs")):
        mine = [r for r in rows.values() if r["group"] == name and r["outlier_score"]]
        aside = [r for r in mine if r["reason"] == "outlier"]
        by_score = sorted((r for r in mine if r["reason"] != "outlier"),
                          key=lambda r: -float(r["outlier_score"]))
        expected = [r["path"].rsplit("/", 1)[1] for r in aside + by_score][:max(3, len(mine) // 10)]
        assert gallery(html, g) == expected
        assert "1 set aside as outliers (shown first)" in html


def test_scores_show_on_hover_in_the_enlarged_view_and_in_the_list(plain: Path, tmp_path: Path) -> None:
    html, rows = report_with_scores(plain, tmp_path)
    items = [i for g in read_run_data(plain).groups for i in g.items]
    n = next(k for k, i in enumerate(items) if i.status == "selected")
    row = rows[items[n].path]
    figure = re.search(rf'<figure class="thumb[^"]*" id="v{n}"[^>]*>(.*?)</figure>', html, re.S)
    assert figure is not None
    facts = unescape(figure.group(1))
    facts = facts[facts.index('<div class="zoomed">'):]  # shown on hover or focus, and enlarged
    assert f"<dt>typicality</dt><dd>{float(row['typicality']):.3g}</dd>" in facts
    assert f"<dt>outlier score</dt><dd>{float(row['outlier_score']):.3g}</dd>" in facts
    assert ".thumb:not(:target):hover .zoomed, .thumb:not(:target):focus-within .zoomed" in html
    header = unescape(re.findall(r'<pre class="list">(.*?)</pre>', html, re.S)[0]).split("\n")[0]
    assert header.split() == ["status", "cluster", "distance", "rank", "typical", "outlier",
                              "unique", "dup", "sim", "file"]
    assert "outlier: outlier score, higher = more unusual" in html  # the columns' legend
    assert "not kept: outlier" in html  # the reason, in the list and the enlarged view


def test_no_score_columns_no_scores_shown(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(plain, out)
    data = dataclasses.replace(read_run_data(out), scores={}, score_columns=())
    html = write_report(data, projection="pca").read_text(encoding="utf-8")
    assert "Most unusual images" not in html and "outlier score" not in html
    assert "typicality" not in html


@pytest.mark.skipif("outlier_score" not in MANIFEST_FIELDS,
                    reason="this repsample's manifest has no score columns yet")
def test_a_manifest_with_scores_end_to_end(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(plain, out)
    scored_manifest(plain / "manifest.csv", out / "manifest.csv")
    html = build_report(out, projection="pca").read_text(encoding="utf-8")
    assert html.count("Most unusual images") == 2 and "<dt>typicality</dt>" in html
