"""The report of a large run, 50 groups x 2,000 images: one file under its size budget that a
browser renders in under 2 s.

The run is written directly (tests/synthetic_run.py: what select would leave, with an embedding
cache for the maps) from 40 tiny generated pictures, so the test takes seconds; bench/report_size.py
measures the size with photographs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report_browser import chromium, probe, screenshot

from conftest import make_image
from repsample.report import Caps, build_report
from synthetic_run import write_run

GROUPS, PER_GROUP, KEPT = 50, 2000, 100
BUDGET_BYTES = 22_000_000  # the README's figure for 100,000 images (photographs: bench/report_size.py)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("large")
    pictures = [make_image(root / "pictures" / f"p{i}.png", seed=i, size=(24, 18)) for i in range(40)]
    out = write_run(root, GROUPS, PER_GROUP, KEPT, pictures)
    return build_report(out, staged=True, projection="pca")


def test_a_large_report_keeps_to_its_budget_and_lists_every_image(large: Path) -> None:
    html = large.read_text(encoding="utf-8")
    assert len(html.encode()) < BUDGET_BYTES
    pictures = html.count('<img src="data:image/jpeg;base64,')
    caps = Caps()
    assert caps.thumbnails * 0.9 <= pictures <= caps.thumbnails  # 60 per group, repeats included
    lists = re.findall(r'<pre class="list">(.*?)</pre>', html, re.S)
    assert len(lists) == GROUPS
    assert sum(part.count("\n") for part in lists) == GROUPS * PER_GROUP  # a line each, and a header
    assert len(re.findall(r'<details class="card group" id="g\d+">', html)) == GROUPS  # folded
    named = len(re.findall(r"<a href=\"#(?:v\d+|g\d+-list)\"><circle", html))
    assert named == GROUPS * caps.map_named  # every map names and links its first points


@pytest.mark.slow
def test_a_large_report_renders_in_chromium_in_under_two_seconds(large: Path,
                                                                  tmp_path: Path) -> None:
    browser = chromium()
    profile = tmp_path / "profile"
    probe(browser, large, profile, lazy=True)  # a first start warms chromium's caches
    findings = probe(browser, large, profile, lazy=True)  # as a person opens it: lazy pictures
    assert findings["problems"] == [] and findings["unreachable"] == []
    assert findings["load_ms"] < 2000, f"rendered in {findings['load_ms']:.0f} ms"
    screenshot(browser, large, profile, "report-large-1400.png", 1400, 2000)
