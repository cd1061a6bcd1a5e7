"""The report's image quality section, on a real select run over a tree with planted issues.

train/colour holds a near-black and a dim image (dark), train/mixed a grey image among colour
ones (grayscale) and a 600x100 one (odd_aspect and odd_size; --drop-issues odd_size sets it
aside), train/scans is mostly grey (grayscale is that group's normal, so no scan is flagged).
"""

from __future__ import annotations

import csv
import re
import shutil
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report import FAST, attributes, figures, jpeg, run
from test_report_extras import section

from conftest import make_image
from repsample.hygiene.quality import CHECKS
from repsample.output.layout import WEIGHTED_MANIFEST_FIELDS
from repsample.output.records import read_run
from repsample.report import Caps, build_report
from repsample.report.html import esc

FLAGGED = {"dark": ["train/colour/dark.png", "train/colour/dim.png"],  # worst first
           "grayscale": ["train/mixed/grey.png"], "odd_aspect": ["train/mixed/wide.png"],
           "odd_size": ["train/mixed/wide.png"]}


def darkened(path: Path, seed: int, factor: float) -> None:
    make_image(path, seed)
    pixels = np.asarray(Image.open(path), dtype=np.float64) * factor
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def make_quality_tree(root: Path) -> Path:
    for i in range(10):
        make_image(root / "train/colour" / f"c_{i:02d}.png", seed=i)
        make_image(root / "train/mixed" / f"m_{i:02d}.png", seed=200 + i)
    darkened(root / "train/colour/dark.png", 50, 0.08)
    darkened(root / "train/colour/dim.png", 51, 0.3)
    make_image(root / "train/mixed/grey.png", seed=61, mode="L")
    make_image(root / "train/mixed/wide.png", seed=70, size=(600, 100))
    for i in range(8):
        make_image(root / "train/scans" / f"s_{i}.png", seed=i, mode="L" if i < 6 else "RGB")
    return root


@pytest.fixture(scope="module")
def flagged_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("quality")
    out = base / "out"
    code, text = run("select", str(make_quality_tree(base / "data")), str(out), "--per-class", "3",
                     "--k-min", "2", "--k-max", "3", "--drop-issues", "odd_size",
                     "--cache", str(base / "cache.sqlite"), "-q", *FAST)
    assert code == 0, text
    return out


def count_rows(part: str) -> dict[str, tuple[str, int, int, int]]:
    """issue -> (rule, images, of which selected, not eligible), from the section's table."""
    found = re.findall(r'<tr><td>(?:<a href="#quality-\w+">)?(\w+)(?:</a>)?</td><td>([^<]*)</td>'
                       r'<td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>',
                       part)
    return {name: (unescape(rule), int(n), int(kept), int(aside)) for name, rule, n, kept, aside in found}


def gallery(part: str, issue: str) -> list[tuple[str, str]]:
    """(figure id, caption) of each picture in one issue's gallery, in page order."""
    start = part.index(f'<h3 id="quality-{issue}">')
    end = part.find("<h3", start + 1)
    body = part[start:end if end > 0 else len(part)]
    return re.findall(r'<figure class="thumb[^"]*" id="([^"]+)".*?<div class="score">([^<]*)</div>', body,
                      re.S)


def test_counts_per_issue_match_the_manifest_and_the_planted_images(flagged_run: Path) -> None:
    html = (flagged_run / "report.html").read_text(encoding="utf-8")
    assert '<a href="#quality">Image quality</a>' in html
    rows = count_rows(section(html, "quality"))
    manifest = read_run(flagged_run).manifest.rows
    assert {c.name for c in CHECKS} == set(rows)
    for check in CHECKS:
        hits = [r for r in manifest if check.name in r.issues]
        assert sorted(r.path for r in hits) == sorted(FLAGGED.get(check.name, [])), check.name
        selected = sum(r.status == "selected" for r in hits)
        aside = len(FLAGGED[check.name]) if check.name in ("odd_aspect", "odd_size") else 0
        assert rows[check.name] == (check.rule, len(hits), selected, aside), check.name
    assert [r.reason for r in manifest if r.path == "train/mixed/wide.png"] == ["odd_size"]


def test_each_issue_has_a_gallery_of_its_images_worst_first(flagged_run: Path) -> None:
    html = (flagged_run / "report.html").read_text(encoding="utf-8")
    part = section(html, "quality")
    pictures = figures(html)
    manifest = {r.path: r for r in read_run(flagged_run).manifest.rows}
    for issue, paths in FLAGGED.items():
        shown = gallery(part, issue)
        score = next(c.score for c in CHECKS if c.name == issue)
        assert [caption for _, caption in shown] == [
            esc(f"{p.rsplit('/', 1)[0]} · {score} {manifest[p].quality[score]:.3g}") for p in paths]
        assert all(pictures[ident] for ident, _ in shown), issue  # a picture, not "no preview"
    (dark_id, _), (dim_id, _) = gallery(part, "dark")
    dark, dim = (np.asarray(jpeg(pictures[i]).convert("L")).mean() for i in (dark_id, dim_id))
    assert dark < 20 < dim < 60
    wide = jpeg(pictures[gallery(part, "odd_aspect")[0][0]])
    assert wide.width >= 5 * wide.height
    assert not re.search(r"<h3 id=\"quality-(blurry|light|low_information)\"", part)
    ids = attributes(html, "id")
    assert len(ids) == len(set(ids))
    assert all(link[1:] in ids for link in attributes(html, "href") if link.startswith("#quality"))


def test_checks_a_group_switched_off_are_named(flagged_run: Path) -> None:
    part = section((flagged_run / "report.html").read_text(encoding="utf-8"), "quality")
    note = re.search(r'<p class="note">([^<]*)</p>', part)
    assert note is not None
    assert "more than 25% of its images share the property" in note.group(1)
    assert note.group(1).endswith("train/scans: grayscale.")


def test_the_gallery_is_capped(flagged_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "capped"
    shutil.copytree(flagged_run, copy)
    html = build_report(copy, caps=Caps(issues=1)).read_text(encoding="utf-8")
    part = section(html, "quality")
    assert [caption.split(" · ")[0] for _, caption in gallery(part, "dark")] == ["train/colour"]
    assert "dark.png" in part and "dim.png" not in part
    assert "1 more not shown; all are in manifest.csv (column issues)." in part
    assert count_rows(part)["dark"][1] == 2  # the count is of all, not of those shown


def rewrite_manifest(output: Path, fields: tuple[str, ...], **cells: str) -> None:
    """manifest.csv with only these columns, and these cells set on every row."""
    path = output / "manifest.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({**row, **cells} for row in rows)


def test_a_run_without_issues_says_so_in_one_line(flagged_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "clean"
    shutil.copytree(flagged_run, copy)
    with (copy / "manifest.csv").open(encoding="utf-8", newline="") as f:
        fields = tuple(next(csv.reader(f)))
    rewrite_manifest(copy, fields, issues="", reason="")
    part = section(build_report(copy).read_text(encoding="utf-8"), "quality")
    assert '<p class="muted">No image quality issue among the 32 measured images.</p>' in part
    assert "<figure" not in part and "<table" not in part


def test_an_older_manifest_has_no_quality_section(flagged_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "older"
    shutil.copytree(flagged_run, copy)
    rewrite_manifest(copy, WEIGHTED_MANIFEST_FIELDS, reason="")
    html = build_report(copy).read_text(encoding="utf-8")
    assert 'id="quality"' not in html and "#quality" not in html
    assert 'id="check"' in html  # the rest of the report is there
