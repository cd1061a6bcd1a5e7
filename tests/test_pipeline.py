"""select() end to end on real generated images: exact counts, manifest, export, cache, resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, FAST_MODEL, TreeFactory
from repsample import select
from repsample.embedding.descriptor import DESCRIPTOR_KEY
from repsample.embedding.quality import QUALITY_KEY
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written

FAST = FAST_MODEL


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_exact_counts_manifest_and_untouched_input(
    make_tree: TreeFactory, tmp_path: Path, cache_path: Path
) -> None:
    root = make_tree({"train/Sick birds": 30, "train/Healthy": 12, "test/Healthy": 5})
    for broken in ("truncated.jpg", "empty.jpg", "not_an_image.png"):
        shutil.copy(DATA / broken, root / "train" / "Healthy" / broken)
    before = digest_tree(root)
    out = tmp_path / "out"

    result = select(root, out, per_class=8, cache=cache_path, **FAST)

    assert digest_tree(root) == before
    by_group = {g.name: g for g in result.groups}
    assert {n: g.selected for n, g in by_group.items()} == {
        "test/Healthy": 5, "train/Healthy": 8, "train/Sick birds": 8}
    assert by_group["train/Healthy"].errors == 3
    assert by_group["test/Healthy"].k == 0 and by_group["test/Healthy"].note
    assert 5 <= by_group["train/Sick birds"].k <= 20

    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 30 + 12 + 3 + 5
    errors = [r for r in rows if r["status"] == "error"]
    assert sorted(Path(r["path"]).name for r in errors) == ["empty.jpg", "not_an_image.png",
                                                            "truncated.jpg"]
    assert all(r["error"] and not r["cluster"] for r in errors)
    selected = [r for r in rows if r["status"] == "selected"]
    assert len(selected) == 21
    for r in selected:
        exported = out / r["group"] / Path(r["path"]).name
        assert exported.read_bytes() == (root / r["path"]).read_bytes()
        assert exported.stat().st_mtime_ns == (root / r["path"]).stat().st_mtime_ns
    clustered = [r for r in rows if r["group"] == "train/Sick birds"]
    assert all(r["cluster"] != "" and float(r["distance"]) >= 0 for r in clustered)
    group_dirs = [out / g for g in by_group]
    exported_files = {p.relative_to(out).as_posix() for d in group_dirs for p in d.rglob("*")}
    assert exported_files == {f"{r['group']}/{Path(r['path']).name}" for r in selected}

    record = json.loads((out / "run.json").read_text())
    group = record["groups"]["train/Sick birds"]
    assert group["selected"] == 8 and group["images"] == 30 and group["errors"] == 0
    assert str(group["k"]) in group["silhouette"] and len(group["silhouette"]) == 16
    assert set(group["seconds"]) >= {"hash", "embed", "select", "export"}
    assert record["model"]["name"] == "resnet18" and record["parameters"]["per_class"] == 8
    assert record["parameters"]["seed"] == 42 and record["versions"]["torch"]


def test_rerun_and_renamed_files_recompute_nothing(
    make_tree: TreeFactory, tmp_path: Path, cache_path: Path
) -> None:
    root = make_tree({"a": 25, "b": 9})
    first = select(root, tmp_path / "o1", per_class=6, cache=cache_path, **FAST)
    assert sum(g.embedded for g in first.groups) == 34

    again = select(root, tmp_path / "o1", per_class=6, cache=cache_path, overwrite=True, **FAST)
    assert sum(g.embedded for g in again.groups) == 0
    assert again.selected() == first.selected()
    assert again.rows == first.rows

    moved = tmp_path / "moved"
    for src in sorted(root.rglob("*.jpg")):
        dest = moved / src.parent.name / f"renamed_{src.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    renamed = select(moved, tmp_path / "o2", per_class=6, cache=cache_path, **FAST)
    assert sum(g.embedded for g in renamed.groups) == 0
    assert [Path(p).name for p in renamed.selected()] == [
        f"renamed_{Path(p).name}" for p in first.selected()]


def test_rerun_reuses_the_stored_clustering(
    make_tree: TreeFactory, tmp_path: Path, cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The k sweep runs once per (vectors, sweep parameters); a rerun reads its result."""
    import repsample.pipeline as pipeline

    root = make_tree({"a": 30})
    first = select(root, tmp_path / "o1", per_class=8, cache=cache_path, **FAST)
    calls: list[int] = []
    real = pipeline.choose_k

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "choose_k", counted)  # a spy: the real sweep still runs
    again = select(root, tmp_path / "o1", per_class=8, cache=cache_path, overwrite=True, **FAST)
    assert calls == [] and again.rows == first.rows
    assert again.groups[0].silhouettes == first.groups[0].silhouettes
    select(root, tmp_path / "o1", per_class=8, cache=cache_path, overwrite=True, seed=7, **FAST)
    assert calls == [1]  # another seed is another clustering

    with sqlite3.connect(cache_path) as db:  # a damaged stored clustering is computed again
        db.execute("UPDATE clusterings SET value = substr(value, 1, 40)")
    damaged = select(root, tmp_path / "o1", per_class=8, cache=cache_path, overwrite=True, **FAST)
    assert calls == [1, 1] and damaged.rows == first.rows


def test_rerun_reuses_the_stored_picks(
    make_tree: TreeFactory, tmp_path: Path, cache_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The strategy picks once per (clustering, strategy, parameters, kept rows): a rerun on
    unchanged data takes its picks and weights as stored, and gets the same rows."""
    from repsample.config import SelectConfig
    from repsample.selection.strategies import STRATEGIES

    root = make_tree({"a": 30, "b": 24})
    first = select(root, tmp_path / "o1", per_class=8, cache=cache_path, **FAST)
    calls: list[int] = []
    kind = STRATEGIES.get(SelectConfig().strategy)
    real = kind._select

    def counted(self: object, *args: object) -> object:
        calls.append(1)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(kind, "_select", counted)  # a spy: the real strategy still picks
    again = select(root, tmp_path / "o1", per_class=8, cache=cache_path, overwrite=True, **FAST)
    assert calls == [] and again.rows == first.rows  # weights, ranks and clusters included
    select(root, tmp_path / "o2", per_class=7, cache=cache_path, **FAST)
    assert calls == [1, 1]  # another budget: both groups pick again
    select(root, tmp_path / "o3", per_class=8, cache=cache_path, keep=tmp_path / "o2" / "manifest.csv",
           **FAST)
    assert calls == [1, 1, 1, 1]  # kept rows are part of what decides the picks

    with sqlite3.connect(cache_path) as db:  # a damaged entry: picked again, with a warning
        db.execute("UPDATE clusterings SET value = substr(value, 1, 40)")
    damaged = select(root, tmp_path / "o1", per_class=8, cache=cache_path, overwrite=True, **FAST)
    assert len(calls) == 6 and damaged.rows == first.rows
    assert "stored selection unreadable; selecting again" in caplog.text


def test_export_modes(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"cls": 8})
    hard = select(root, tmp_path / "hard", per_class=3, mode="hardlink", cache=cache_path, **FAST)
    for rel in hard.selected():
        assert (tmp_path / "hard" / "cls" / Path(rel).name).stat().st_ino == (root / rel).stat().st_ino
    sym = select(root, tmp_path / "sym", per_class=3, mode="symlink", cache=cache_path, **FAST)
    for rel in sym.selected():
        link = tmp_path / "sym" / "cls" / Path(rel).name
        assert link.is_symlink() and link.resolve() == (root / rel).resolve()
    select(root, tmp_path / "none", per_class=3, mode="none", cache=cache_path, **FAST)
    assert not (tmp_path / "none" / "cls").exists()
    assert (tmp_path / "none" / "manifest.csv").is_file()
    assert sym.selected() == hard.selected()


def test_identical_images_do_not_crash_clustering(tmp_path: Path, cache_path: Path) -> None:
    from conftest import make_image

    root = tmp_path / "data"
    make_image(root / "dup" / "src.jpg", 7)
    for i in range(11):
        shutil.copy(root / "dup" / "src.jpg", root / "dup" / f"copy_{i:02d}.jpg")
    make_image(root / "dup" / "zz_other.jpg", 8)
    result = select(root, tmp_path / "out", per_class=4, cache=cache_path, dedup=False, **FAST)
    assert result.groups[0].selected == 4
    assert result.groups[0].embedded == 2  # twelve copies share one content: decoded once
    deduped = select(root, tmp_path / "dedup", per_class=4, cache=cache_path, **FAST)
    assert deduped.groups[0].selected == 2  # by default copies count once: two distinct pictures


def _cache_rows(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM embeddings WHERE model NOT IN (?, ?)",
                                  (DESCRIPTOR_KEY, QUALITY_KEY)).fetchone()[0])  # the model's rows
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(
    make_tree: TreeFactory, tmp_path: Path, cache_path: Path
) -> None:
    root = make_tree({"x": 80, "y": 80})
    cmd = [sys.executable, "-m", "repsample", "select", str(root), str(tmp_path / "killed"),
           "--per-class", "10", "--model", "resnet18", "--weights", "random", "--batch-size", "8",
           "--workers", "1", "-q", "--cache", str(cache_path)]
    proc = subprocess.Popen(cmd, start_new_session=True)
    deadline = time.monotonic() + 240
    while _cache_rows(cache_path) < 24 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole session: the CLI and its decoding workers
    proc.wait()
    done = _cache_rows(cache_path)
    assert 0 < done < 160, "the kill must land mid-embedding"
    assert not (tmp_path / "killed" / "manifest.csv").exists()

    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert record["totals"]["embedded"] == 160 - done

    fresh = select(root, tmp_path / "fresh", per_class=10, cache=tmp_path / "fresh.sqlite",
                   batch_size=64, **FAST)
    assert read_manifest(tmp_path / "killed" / "manifest.csv") == read_manifest(
        tmp_path / "fresh" / "manifest.csv")
    assert fresh.groups[0].selected == 10


def test_awkward_file_names_survive(tmp_path: Path, cache_path: Path) -> None:
    from conftest import make_image

    root = tmp_path / "data"
    names = ["spa ce.jpg", "ünïcødé.JPG", "quote\"comma,.png", "<img src=x onerror=alert(1)>.jpeg"]
    for i, name in enumerate(names):
        make_image(root / "Weird Class" / name, i)
    raw = os.fsencode(root / "Weird Class") + b"/latin1_\xe9.jpg"  # not valid UTF-8
    make_image(Path(os.fsdecode(raw)), 9)
    result = select(root, tmp_path / "out", per_class=3, cache=cache_path, **FAST)
    rows = read_manifest(tmp_path / "out" / "manifest.csv")
    assert len(rows) == 5 and result.groups[0].selected == 3
    assert {Path(r["path"]).name for r in rows} == {*names, os.fsdecode(b"latin1_\xe9.jpg")}
    for rel in result.selected():
        assert (tmp_path / "out" / "Weird Class" / Path(rel).name).is_file()


def test_rerun_served_by_the_cache_never_loads_torch(make_tree: TreeFactory, tmp_path: Path,
                                                     cache_path: Path) -> None:
    """A rerun is seconds: no model, no device query, not even the torch import (about 2 s)."""
    root = make_tree({"a": 12})
    select(root, tmp_path / "first", per_class=5, cache=cache_path, **FAST)
    script = (
        "import sys, repsample\n"
        f"r = repsample.select({str(root)!r}, {str(tmp_path / 'again')!r}, per_class=5,"
        f" cache={str(cache_path)!r}, model='resnet18', weights='random')\n"
        "print(sum(g.embedded for g in r.groups), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]
    record = json.loads((tmp_path / "again" / "run.json").read_text())
    assert record["model"]["device"] == "auto (nothing embedded)"
