"""The hygiene pass inside select: dedup, --no-dedup, --drop-leaks, manifest and run.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from conftest import FAST_MODEL, TreeFactory
from repsample import select
from repsample.cli import cli
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written

FAST = {**FAST_MODEL, "report": False}


def test_duplicates_are_not_eligible(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/a": 4})
    for i in range(3):
        shutil.copy(root / "train/a/img_000.jpg", root / f"train/a/z_copy_{i}.jpg")
    result = select(root, tmp_path / "out", per_class=6, cache=cache_path, **FAST)

    assert result.groups[0].selected == 4  # min(N, eligible): the three copies count once
    assert result.groups[0].excluded == 3
    rows = {r["path"]: r for r in read_manifest(tmp_path / "out" / "manifest.csv")}
    for i in range(3):
        row = rows[f"train/a/z_copy_{i}.jpg"]
        assert row["status"] == "not_selected" and row["duplicate_of"] == "train/a/img_000.jpg"
    assert rows["train/a/img_000.jpg"]["status"] == "selected"
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["check"]["exact_duplicates"] == 3 and record["check"]["dedup"] is True
    assert (tmp_path / "out" / "check.csv").is_file()

    off = select(root, tmp_path / "off", per_class=6, cache=cache_path, dedup=False, **FAST)
    assert off.groups[0].selected == 6 and off.groups[0].excluded == 0


def test_no_dedup_skips_the_near_search_but_lists_exact_copies(
        make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/a": 6})
    shutil.copy(root / "train/a/img_000.jpg", root / "train/a/z_copy.jpg")
    Image.open(root / "train/a/img_001.jpg").save(root / "train/a/z_reencoded.jpg", quality=40)
    on = select(root, tmp_path / "on", per_class=3, cache=cache_path, **FAST)
    off = select(root, tmp_path / "off", per_class=3, cache=cache_path, dedup=False, **FAST)
    assert on.groups[0].excluded == 2 and off.groups[0].excluded == 0
    rows = {r["path"]: r for r in read_manifest(tmp_path / "off" / "manifest.csv")}
    assert rows["train/a/z_copy.jpg"]["duplicate_of"] == "train/a/img_000.jpg"
    assert rows["train/a/z_reencoded.jpg"]["duplicate_of"] == ""  # not searched for
    check = json.loads((tmp_path / "off" / "run.json").read_text())["check"]
    assert check["near_searched"] is False and check["near_pairs"] == 0
    assert json.loads((tmp_path / "on" / "run.json").read_text())["check"]["near_searched"] is True


def test_dedup_is_a_no_op_without_duplicates(make_tree: TreeFactory, tmp_path: Path,
                                             cache_path: Path) -> None:
    root = make_tree({"train/a": 30})
    on = select(root, tmp_path / "on", per_class=7, cache=cache_path, **FAST)
    off = select(root, tmp_path / "off", per_class=7, cache=cache_path, dedup=False, **FAST)
    assert on.groups[0].excluded == 0
    assert on.selected() == off.selected() and on.groups[0].k == off.groups[0].k


def test_drop_leaks_keeps_leaked_train_images_out(make_tree: TreeFactory, tmp_path: Path,
                                                  cache_path: Path) -> None:
    root = make_tree({"train/a": 5, "test/a": 3})
    shutil.copy(root / "train/a/img_001.jpg", root / "test/a/z_leak.jpg")
    reported = select(root, tmp_path / "r", per_class=10, cache=cache_path, **FAST)
    assert "train/a/img_001.jpg" in reported.selected("train/a")  # reported, not dropped
    rows = {r["path"]: r for r in read_manifest(tmp_path / "r" / "manifest.csv")}
    assert rows["train/a/img_001.jpg"]["leak_with"] == "test/a/z_leak.jpg"

    dropped = select(root, tmp_path / "d", per_class=10, cache=cache_path, drop_leaks=True, **FAST)
    assert "train/a/img_001.jpg" not in dropped.selected("train/a")
    assert len(dropped.selected("train/a")) == 4
    assert "test/a/z_leak.jpg" in dropped.selected("test/a")  # held-out splits stay whole


def test_cli_flags(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"val/a": 3, "test/a": 3})
    shutil.copy(root / "val/a/img_000.jpg", root / "test/a/z_leak.jpg")
    base = ["select", str(root), "--cache", str(cache_path), "--model", "resnet18",
            "--weights", "random", "--no-report", "--per-class", "5"]
    ok = CliRunner().invoke(cli, [*base[:2], str(tmp_path / "a"), *base[2:], "--no-dedup"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, [*base[:2], str(tmp_path / "b"), *base[2:], "--drop-leaks"])
    assert bad.exit_code == 2 and "no training split" in bad.output
    assert not (tmp_path / "b").exists()  # refused before OUTPUT was touched
