"""The report's evaluation and duplicates sections, on a real select + evaluate run.

The tree has train and test splits of two classes, an exact copy planted in train/cats (dedup sets
it aside) and a train/dogs image copied into test/dogs under a hostile name (a leak).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_report import FAST, XSS_NAME
from test_report_browser import PROBE, chromium, headless

from conftest import make_image
from repsample.cli import cli
from repsample.evaluate import LOWER_IS_BETTER
from repsample.evaluate import METRICS as EVALUATE_METRICS
from repsample.report import Caps, build_report
from repsample.report.evaluation import METRICS, Figure, parse

ARTIFACTS = Path(__file__).parent.parent.parent / "artifacts"
GROUPS = ("test/cats", "test/dogs", "train/cats", "train/dogs")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def make_split_tree(root: Path) -> Path:
    for split, n, base in (("train", 10, 0), ("test", 5, 500)):
        for c, cls in enumerate(("cats", "dogs")):
            for i in range(n):
                make_image(root / split / cls / f"{cls}_{i:02d}.jpg", seed=base + 100 * c + i)
    shutil.copy(root / "train/cats/cats_00.jpg", root / "train/cats/cats_copy.jpg")
    shutil.copy(root / "train/dogs/dogs_03.jpg", root / "test/dogs" / XSS_NAME)
    return root


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """(OUTPUT, the report select wrote, what evaluate printed): one real run for the module."""
    base = tmp_path_factory.mktemp("extras")
    data = make_split_tree(base / "data")
    out = base / "out"
    code, text = run("select", str(data), str(out), "--per-class", "4", "--k-min", "2", "--k-max", "3",
                     "--cache", str(base / "cache.sqlite"), "-q", *FAST)
    assert code == 0, text
    before = (out / "report.html").read_text(encoding="utf-8")
    code, printed = run("evaluate", str(out))
    assert code == 0, printed
    return out, before, printed


def html_of(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def section(html: str, ident: str) -> str:
    """A section (overview, evaluation, check) or a group's collapsible section (g<n>)."""
    if ident.startswith("g"):
        start = html.index(f'<details class="card group" id="{ident}"')
        return html[start:html.index('<details class="card group"', start + 1)]
    start = html.index(f'<section class="card" id="{ident}">')
    return html[start:html.index("</section>", start)]


def verdict(mine: float, mean: float, std: float, lower_is_better: bool = True) -> str:
    gain = mean - mine if lower_is_better else mine - mean
    return "beats random" if gain > std + 1e-9 else "worse than random" if gain < -std - 1e-9 \
        else "within spread"


def test_evaluate_rebuilds_the_report_with_the_comparison(evaluated: tuple[Path, str, str]) -> None:
    out, before, printed = evaluated
    assert 'id="evaluation"' not in before
    assert f"report: {out / 'report.html'}" in printed.replace("\n", "")
    html = html_of(out)
    assert 'id="evaluation"' in html and '<a href="#evaluation">Evaluation</a>' in html


def test_every_group_row_shows_selection_random_and_verdict(evaluated: tuple[Path, str, str]) -> None:
    out, _, _ = evaluated
    result: dict[str, Any] = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    part = section(html_of(out), "evaluation")
    per_group = part[part.index("<h3>Per group</h3>"):]
    rows = {re.search(r"<td>([^<]*)</td>", r).group(1): r  # type: ignore[union-attr]
            for r in per_group.split("<tr>")[2:]}
    assert sorted(rows) == list(GROUPS)
    for name, g in result["groups"].items():
        cells = rows[name].split("<td")[3:]  # after group and selected
        assert f"{g['selected']} of {g['images']}" in rows[name]
        for metric, cell in zip(EVALUATE_METRICS, cells, strict=True):
            mine, chance = g["selection"][metric], g["random"][metric]
            if mine is None:  # a group dedup left with one cluster has no cluster TV
                assert "<b>" not in cell
                continue
            assert f"<b>{mine:.4g}</b>" in cell
            spread = chance["std"] if chance["std"] > 1e-12 else 0.0  # float noise shows as 0
            assert f"{chance['mean']:.4g} ± {spread:.2g}" in cell
            assert verdict(mine, chance["mean"], chance["std"]) in cell


def test_overall_rows_and_charts_say_which_way_is_better(evaluated: tuple[Path, str, str]) -> None:
    out, _, _ = evaluated
    result = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    part = section(html_of(out), "evaluation")
    overall = part[part.index("<h3>Overall</h3>"):part.index("<h3>Selection against random")]
    probe = result["linear_probe"]
    assert probe is not None and probe["test_split"] == "test"  # train and test splits, 2 classes
    row = overall[overall.index("linear-probe accuracy"):]
    row = row[:row.index("</tr>")]
    assert "higher is better" in row and f"{probe['selection']:.4g}" in row
    expected = verdict(probe["selection"], probe["random"]["mean"], probe["random"]["std"], False)
    assert expected in row
    assert overall.count("lower is better") == len(EVALUATE_METRICS)
    charts = part[part.index("<h3>Selection against random"):part.index("<h3>Per group</h3>")]
    assert charts.count('<svg class="chart"') == len(EVALUATE_METRICS) + 1
    assert charts.count("↓ lower is better") == len(EVALUATE_METRICS)
    assert charts.count("↑ higher is better") == 1
    dots = re.findall(r'class="sel v-(\w+)"', charts)
    known = sum(g["selection"][m] is not None for g in result["groups"].values() for m in EVALUATE_METRICS)
    known += sum(result["overall"]["selection"][m] is not None for m in EVALUATE_METRICS) + 1
    assert len(dots) == known and set(dots) <= {"beats", "within", "worse"}


def test_duplicates_section_shows_pairs_side_by_side(evaluated: tuple[Path, str, str]) -> None:
    out, _, _ = evaluated
    part = section(html_of(out), "check")
    assert "Duplicates within a group (1)" in part
    assert "Leaks between splits (1)" in part  # two check.csv rows, one pair
    assert "Unreadable" not in part
    pairs = part.split('<div class="pair">')[1:]
    assert len(pairs) == 2
    for pair in pairs:
        assert pair.count('src="data:image/jpeg;base64,') == 2
        assert "similarity <b>1.0000</b> · exact copy" in pair
    assert "cats_copy.jpg" in pairs[0] and "set aside (duplicate)" in pairs[0]
    assert "dogs_03.jpg" in pairs[1] and "test/dogs ↔ train/dogs" in pairs[1]


def test_per_group_counts_of_dedup_and_leaks(evaluated: tuple[Path, str, str]) -> None:
    out, _, _ = evaluated
    html = html_of(out)
    part = section(html, "check")
    table = part[part.index("<h3>Per group</h3>"):]
    rows = table.split("<tr>")[2:]
    cells = {re.search(r">([^<]+)</a>", r).group(1): re.findall(r'<td class="num">(\d+)</td>', r)  # type: ignore[union-attr]
             for r in rows if "</a>" in r}
    # images, excluded by dedup, leaked, of which selected
    assert cells["train/cats"][:3] == ["11", "1", "0"]
    assert cells["train/dogs"][:3] == ["10", "0", "1"]
    assert cells["test/dogs"][:3] == ["6", "0", "1"]
    assert "test/cats" not in cells and "1 other groups: none." in table
    assert "excluded by dedup" in table
    cats = section(html, "g2")
    assert "train/cats" in cats and "1 duplicates" in cats


def test_names_in_the_new_sections_are_escaped(evaluated: tuple[Path, str, str]) -> None:
    out, _, _ = evaluated
    html = html_of(out)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in section(html, "check")


def test_check_pairs_are_capped_with_a_count(evaluated: tuple[Path, str, str], tmp_path: Path) -> None:
    out, _, _ = evaluated
    copy = tmp_path / "capped"
    shutil.copytree(out, copy)
    header = "kind,match,path,group,other,other_group,similarity,error\n"
    rows = "".join(f"duplicate,near,train/dogs/dogs_0{i}.jpg,train/dogs,train/dogs/dogs_09.jpg,"
                   f"train/dogs,0.9{i}00,\n" for i in range(5))
    (copy / "check.csv").write_text(header + rows + "unreadable,,x.jpg,train/dogs,,,,truncated\n",
                                    encoding="utf-8")
    part = section(build_report(copy, caps=Caps(check_rows=2)).read_text(encoding="utf-8"), "check")
    assert "Duplicates within a group (5)" in part and "3 more not shown; all are in check.csv." in part
    assert len(re.findall(r'<div class="pair">', part)) == 2
    assert "Unreadable files (1)" in part and "truncated" in part
    # the plan made thumbnails for exactly the shown pairs
    assert part.count('src="data:image/jpeg;base64,') == 4


def test_report_without_evaluation_or_check_files(evaluated: tuple[Path, str, str],
                                                  tmp_path: Path) -> None:
    out, _, _ = evaluated
    bare = tmp_path / "bare"
    shutil.copytree(out, bare)
    (bare / "evaluation.json").unlink()
    (bare / "check.csv").unlink()
    code, text = run("report", str(bare), "-q")
    assert code == 0, text
    html = html_of(bare)
    assert 'id="overview"' in html
    assert 'id="evaluation"' not in html and 'id="check"' not in html and "#evaluation" not in html


def test_evaluate_leaves_a_run_without_report_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(6):
        make_image(data / "a" / f"{i}.jpg", seed=i)
    out = tmp_path / "out"
    code, text = run("select", str(data), str(out), "--per-class", "3", "--no-report", "--cache",
                     str(tmp_path / "c.sqlite"), "-q", *FAST)
    assert code == 0, text
    code, text = run("evaluate", str(out))
    assert code == 0, text
    assert (out / "evaluation.json").is_file() and not (out / "report.html").exists()
    assert "report:" not in text


def test_older_or_malformed_evaluation_files(evaluated: tuple[Path, str, str], tmp_path: Path) -> None:
    out, _, _ = evaluated
    copy = tmp_path / "odd"
    shutil.copytree(out, copy)
    partial = {"seeds": "five", "groups": {"train/<b>x</b>": {
        "images": 10, "selected": 3,
        "selection": {"coverage_mean": 1.5, "mmd": "n/a", "new_metric": 0.2},
        "random": {"coverage_mean": {"mean": 2.0}, "new_metric": {"mean": 0.1, "std": 0.01}}}},
        "overall": {"selection": {"coverage_mean": 1.5}, "random": {"coverage_mean": 2.0}},
        "linear_probe": None}
    (copy / "evaluation.json").write_text(json.dumps(partial), encoding="utf-8")
    part = section(build_report(copy).read_text(encoding="utf-8"), "evaluation")
    assert "train/&lt;b&gt;x&lt;/b&gt;" in part and "<b>x</b>" not in part
    assert "beats random" in part  # 1.5 against a mean of 2.0 with no spread recorded
    assert "new metric" in part and "no verdict" in part  # unknown direction: shown, not judged

    (copy / "evaluation.json").write_text(json.dumps({"groups": {"g": [1, 2]}, "x": 1}),
                                          encoding="utf-8")
    part = section(build_report(copy).read_text(encoding="utf-8"), "evaluation")
    assert "not in the layout" in part


def test_verdicts_follow_each_metrics_direction() -> None:
    assert Figure(1.0, 2.0, 0.5).verdict(lower_is_better=True) == "beats"
    assert Figure(1.8, 2.0, 0.5).verdict(lower_is_better=True) == "within"
    assert Figure(3.0, 2.0, 0.5).verdict(lower_is_better=True) == "worse"
    assert Figure(3.0, 2.0, 0.5).verdict(lower_is_better=False) == "beats"
    assert Figure(0.0, 0.0, 0.0).verdict(lower_is_better=True) == "within"
    assert Figure(1.9, 2.0, None).verdict(lower_is_better=True) == "beats"
    assert Figure(None, 2.0, 0.1).verdict(lower_is_better=True) == "none"


def test_directions_agree_with_evaluate() -> None:
    for metric in EVALUATE_METRICS:
        assert METRICS[metric].lower_is_better is LOWER_IS_BETTER[metric]
    assert METRICS["linear_probe"].lower_is_better is False
    assert parse({"groups": {}}) is None and parse({"groups": {"g": {"selection": {}}}}) is None


@pytest.mark.slow
def test_extras_in_headless_chromium(evaluated: tuple[Path, str, str]) -> None:
    """No console error, broken image or blocked request in the new sections; a screenshot."""
    browser = chromium()
    out, _, _ = evaluated
    html = html_of(out)
    probed = html.replace("<head>", "<head>" + PROBE % json.dumps(XSS_NAME), 1)
    (out / "probe.html").write_text(probed.replace(' loading="lazy"', ""), encoding="utf-8")
    done = headless(browser, out.parent / "profile", "--dump-dom", (out / "probe.html").as_uri())
    (out / "probe.html").unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; chromium said: {done.stderr[-2000:]}"
    findings = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                          .replace("&lt;", "<").replace("&gt;", ">"))
    assert findings["problems"] == [] and findings["broken"] == []
    assert findings["images"] == html.count('src="data:image/jpeg;base64,') > 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-extras-screenshot.png"
    headless(browser, out.parent / "profile", "--window-size=1280,4200", f"--screenshot={shot}",
             (out / "report.html").as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_modes_covered_are_a_higher_is_better_figure_with_the_modes_missed() -> None:
    from repsample.report.evaluation import section

    spread = {"mean": 1.4, "std": 0.5}
    group = {"images": 30, "selected": 4, "selection": {"mmd": 0.1}, "random": {"mmd": spread},
             "modes": {"total": 3, "selection": 3, "random": spread, "missed": []}}
    other = {**group, "modes": {"total": 4, "selection": 2, "random": {"mean": 2.0, "std": 0.0},
                                "missed": ["lake <b>", "hill"]}}
    data = {"seeds": 5, "groups": {"train/a": group, "train/b": other},
            "overall": {"selection": {"mmd": 0.1}, "random": {"mmd": 0.12}},
            "modes": {"source": "modes.csv:kind", "total": 7, "selection": 5,
                      "random": {"mean": 3.4, "std": 0.5}}}
    shown = parse(data)
    assert shown is not None
    assert shown.groups[0].figures["modes"].verdict(METRICS["modes"].lower_is_better) == "beats"
    assert shown.overall.figures["modes"].selection == 5.0
    html = section(shown)
    assert "modes covered" in html and "modes.csv:kind" in html
    assert "train/b: lake &lt;b&gt;, hill" in html  # missed modes named, escaped
    assert METRICS["modes"].lower_is_better is False
