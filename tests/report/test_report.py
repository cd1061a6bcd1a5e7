"""The report: built by select, rebuilt by `repsample report`, one self-contained file, escaped."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import DATA, make_image
from repsample.cli import cli
from repsample.output.outcome import GroupResult
from repsample.report import Caps, build_report
from repsample.report.embedmap import pca_2d, project_group
from repsample.report.gather import Item, ReportGroup, read_run_data
from repsample.report.plan import strip

FAST = ["--model", "resnet18", "--weights", "random"]
XSS_NAME = "<img src=x onerror=alert(1)>.jpg"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def make_dataset(root: Path) -> Path:
    """Two groups, one holding a hostile file name and a truncated JPEG."""
    for i in range(14):
        make_image(root / "train" / "cats" / f"cat_{i:02d}.jpg", seed=i)
    for i in range(9):
        make_image(root / "train" / "dogs" / f"dog_{i:02d}.png", seed=100 + i, size=(40, 70))
    make_image(root / "train" / "cats" / XSS_NAME, seed=999)
    shutil.copy(DATA / "truncated.jpg", root / "train" / "cats" / "broken.jpg")
    return root


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real select run (report on by default), shared by the tests that only read it."""
    base = tmp_path_factory.mktemp("report")
    data = make_dataset(base / "data")
    out = base / "out"
    code, text = run("select", str(data), str(out), "--per-class", "5", "--k-min", "2",
                     "--k-max", "4", "--cache", str(base / "cache.sqlite"), "-q", *FAST)
    assert code == 0, text
    return out


def attributes(html: str, name: str) -> list[str]:
    return re.findall(rf'\s{name}="([^"]*)"', html)


def figures(html: str) -> dict[str, str]:
    """Each figure's id -> its picture's data URI (or "" when it has none)."""
    out = {}
    for ident, body in re.findall(r'<figure class="thumb[^"]*" id="([^"]+)"(.*?)</figure>', html, re.S):
        found = re.search(r'<img src="([^"]+)"', body)
        out[ident] = found.group(1) if found else ""
    return out


def list_rows(html: str) -> list[tuple[str, str]]:
    """(file name, status) of every line of the groups' image lists, in page order."""
    out = []
    for text in re.findall(r'<pre class="list">(.*?)</pre>', html, re.S):
        header, *lines = unescape(text).split("\n")
        name_at, cluster_at = header.index("file"), header.index("cluster")
        out += [(line[name_at:], line[:cluster_at].strip()) for line in lines]
    return out


def jpeg(uri: str) -> Image.Image:
    head, _, data = uri.partition(",")
    assert head == "data:image/jpeg;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


def test_select_writes_one_file_carrying_a_picture_per_shown_image(selection: Path) -> None:
    html = (selection / "report.html").read_text(encoding="utf-8")
    run_data = read_run_data(selection)
    items = [i for g in run_data.groups for i in g.items]
    valid = [i for i in items if i.status != "error"]
    assert len(valid) == 24  # under every cap: each valid image is pictured once
    shown = figures(html)  # v<n>: an image's first picture; w<n>: a repeat (the outlier gallery)
    assert len([i for i in shown if i.startswith("v")]) == 24
    assert all(ident.startswith(("v", "w")) for ident in shown)
    assert set(shown.values()) == {shown[i] for i in shown if i.startswith("v")}
    for n, item in enumerate(items):
        if item.status == "error":
            assert f"v{n}" not in shown
            continue
        cached = (selection / ".report" / "thumbs" / f"{item.hash}.jpg").read_bytes()
        assert shown[f"v{n}"] == "data:image/jpeg;base64," + base64.b64encode(cached).decode()
        assert max(jpeg(shown[f"v{n}"]).size) <= 160
    assert "Files that failed (1)" in html and "broken.jpg" in html
    assert "Silhouette against k" in html and "chosen k = " in html
    assert html.count('<svg class="chart"') >= 6  # silhouette, sizes and map per group


def test_every_image_is_in_its_groups_list(selection: Path) -> None:
    html = (selection / "report.html").read_text(encoding="utf-8")
    items = [i for g in read_run_data(selection).groups for i in g.items]
    rows = list_rows(html)
    assert len(rows) == len(items)  # groups in order, each in manifest order
    words = {"selected": "kept", "not_selected": "not kept", "error": "failed"}
    for (name, status), item in zip(rows, items, strict=True):
        assert name == item.name and status.startswith(words[item.status])


def test_file_names_are_text_not_markup(selection: Path) -> None:
    html = (selection / "report.html").read_text(encoding="utf-8")
    assert "onerror=alert" in html  # the name is there...
    assert "<img src=x" not in html  # ...but never as a tag
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in html


def test_nothing_loads_from_anywhere_and_only_the_hashed_script_runs(selection: Path) -> None:
    html = (selection / "report.html").read_text(encoding="utf-8")
    assert all(src.startswith("data:image/jpeg;base64,") for src in attributes(html, "src"))
    for link in attributes(html, "href"):
        assert not re.match(r"^([a-z]+:|/)", link), link  # in-page anchors or exported files
        if not link.startswith("#"):
            from urllib.parse import unquote
            assert (selection / unquote(link)).is_file(), link
    assert "<link" not in html
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None
    assert policy.group(1) == (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                               f"script-src 'sha256-{digest}'")


def test_ids_are_unique_and_every_anchor_lands(selection: Path) -> None:
    html = (selection / "report.html").read_text(encoding="utf-8")
    ids = attributes(html, "id")
    assert len(ids) == len(set(ids))
    for link in attributes(html, "href"):
        if link.startswith("#") and link != "#_":  # #_ closes an enlarged picture
            assert link[1:] in ids, link


def test_report_command_rebuilds_and_reuses_thumbnails(selection: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(selection, moved)  # relative links: the copy works on its own
    (moved / "report.html").unlink()
    thumbs = sorted((moved / ".report" / "thumbs").iterdir())
    stamps = [t.stat().st_mtime_ns for t in thumbs]
    code, out = run("report", str(moved), "-q")
    assert code == 0, out
    assert (moved / "report.html").is_file()
    assert [t.stat().st_mtime_ns for t in thumbs] == stamps
    assert sorted((moved / ".report" / "thumbs").iterdir()) == thumbs


def test_report_without_cache_still_builds_and_says_why_no_map(selection: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(selection, out)
    path = build_report(out, cache=tmp_path / "nowhere.sqlite")
    html = path.read_text(encoding="utf-8")
    assert "No map: the embedding cache" in html
    assert not (tmp_path / "nowhere.sqlite").exists()  # asking must not create a cache


def test_report_of_a_folder_without_a_run_is_a_one_line_error(tmp_path: Path) -> None:
    code, out = run("report", str(tmp_path))
    assert code == 2
    assert "manifest.csv not found" in out and "Traceback" not in out


def test_no_report_flag(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(4):
        make_image(data / "a" / f"{i}.jpg", seed=i)
    code, out = run("select", str(data), str(tmp_path / "out"), "--per-class", "2", "--no-report",
                    "--cache", str(tmp_path / "c.sqlite"), "-q", *FAST)
    assert code == 0, out
    assert (tmp_path / "out" / "manifest.csv").is_file()
    assert not (tmp_path / "out" / "report.html").exists()
    assert not (tmp_path / "out" / ".report").exists()


def test_a_small_budget_shows_fewer_pictures_and_lists_every_image(selection: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "capped"
    shutil.copytree(selection, out)
    caps = Caps(thumbnails=4, group_min=4, strip=2, issues=0)  # no quality gallery: groups only
    html = build_report(out, caps=caps).read_text(encoding="utf-8")
    groups = read_run_data(out).groups
    assert len(figures(html)) == 8  # four per group
    assert re.search(r"best \d+ of \d+ shown \(all are in the image list below\)", html)
    assert len(list_rows(html)) == sum(len(g.items) for g in groups)
    assert not (out / ".report" / "groups").exists()  # one file: no pages beside it


def test_evaluation_and_check_files_are_shown(selection: Path, tmp_path: Path) -> None:
    out = tmp_path / "extras"
    shutil.copytree(selection, out)
    evaluation = {"metric": "coverage", "methods": {
        "repsample": {"coverage": 0.91, "mmd": 0.012}, "random": {"coverage": 0.83, "mmd": 0.020}},
        "random_runs": [0.81, 0.83, 0.84], "note": "<b>not bold</b>"}
    (out / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    (out / "check.csv").write_text("kind,a,b\nnear_duplicate,train/cats/cat_00.jpg,"
                                   "train/cats/cat_01.jpg\n", encoding="utf-8")
    html = build_report(out).read_text(encoding="utf-8")
    assert 'id="evaluation"' in html and "0.91" in html and "0.83" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert 'id="check"' in html and "near_duplicate" in html
    check = html[html.index('id="check"'):]
    assert check.count('src="data:image/jpeg;base64,') >= 2


def test_a_bad_evaluation_file_does_not_break_the_report(selection: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad"
    shutil.copytree(selection, out)
    (out / "evaluation.json").write_text("{not json", encoding="utf-8")
    html = build_report(out).read_text(encoding="utf-8")
    assert 'id="evaluation"' not in html and 'id="overview"' in html


def item(path: str, status: str, cluster: int, distance: float, digest: str = "") -> Item:
    return Item(path, "g", status, cluster, distance, None, digest, "")


def test_strip_spans_nearest_to_farthest() -> None:
    items = [item(f"{i}.jpg", "not_selected", 0, float(i)) for i in range(100)]
    chosen = strip(items, 5)
    assert [i.distance for i in chosen] == [0, 25, 50, 74, 99]  # round() is banker's at .5
    assert strip(items[:3], 5) == items[:3]


def test_map_samples_large_groups_and_keeps_selected_on_top() -> None:
    rng = np.random.default_rng(0)
    items = [item(f"{i}.jpg", "selected" if i % 10 == 0 else "not_selected", i % 3, 0.0,
                  f"{i:064x}") for i in range(500)]
    vectors = {i.hash: rng.normal(size=8).astype(np.float32) for i in items}
    group = ReportGroup(items, GroupResult("g", 500, 0, 50, 3, {}, None, {}))
    points = project_group(group, vectors, seed=1, method="pca", max_points=100)
    assert points is not None and points.total == 500 and len(points.items) == 100
    assert sum(i.status == "selected" for i in points.items) == 50
    assert all(i.status == "selected" for i in points.items[50:])
    assert points.xy.min() >= 0 and points.xy.max() <= 1


def test_pca_finds_the_direction_of_largest_spread() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(0, 10, 200), rng.normal(0, 1, 200), rng.normal(0, 0.1, 200)])
    xy = pca_2d(X)
    assert np.corrcoef(xy[:, 0], X[:, 0])[0, 1] > 0.99
    assert np.corrcoef(xy[:, 1], X[:, 1])[0, 1] > 0.99


@pytest.mark.slow
def test_report_with_the_real_default_model(example_tree: Path, tmp_path: Path) -> None:
    """The offline default model on a handful of real Fashion-MNIST images: maps and k chart."""
    data = tmp_path / "few"
    for group in ("train/Ankle boot", "train/T-shirt top"):
        for src in sorted((example_tree / group).iterdir())[:8]:
            (data / group).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, data / group / src.name)
    out = tmp_path / "out"
    code, text = run("select", str(data), str(out), "--per-class", "3", "--k-min", "2",
                     "--k-max", "3", "--cache", str(tmp_path / "c.sqlite"), "-q")
    assert code == 0, text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "efficientnet-lite0 (default)" in html
    assert html.count("Map (PCA") == 2 and "No map" not in html
    assert len([i for i in figures(html) if i.startswith("v")]) == 16  # w<n>: the outlier gallery


def test_an_evaluation_says_whether_it_scores_this_selection(selection: Path, tmp_path: Path) -> None:
    out = tmp_path / "marked"
    shutil.copytree(selection, out)
    hand_made = {"groups": {"train/cats": {"images": 15, "selected": 5,
                                           "selection": {"mmd": 0.1}, "random": {"mmd": 0.2}}},
                 "overall": {"selection": {"mmd": 0.1}, "random": {"mmd": 0.2}}}
    (out / "evaluation.json").write_text(json.dumps(hand_made), encoding="utf-8")
    html = build_report(out).read_text(encoding="utf-8")
    assert 'id="evaluation"' in html and "does not say which selection it scored" in html

    other = {**hand_made, "scored": {"manifest_sha256": "0" * 64, "run_started": "2020-01-01"}}
    (out / "evaluation.json").write_text(json.dumps(other), encoding="utf-8")
    html = build_report(out).read_text(encoding="utf-8")
    assert 'id="evaluation"' not in html and "Evaluation against random" not in html
    assert "scored an earlier selection" in html and "#evaluation" not in html
