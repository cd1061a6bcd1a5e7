"""Trust at OUTPUT's edges (issue 22): repsample writes and reads only inside the folder it owns,
removes only what its inventory proves it wrote, and says what to do where it cannot.

Real processes (``python -m repsample``) on real files; an OUTPUT is made in-process where that
is only the setting of a scene. Items: 3 (a linked .report or thumbnail), 4 (stage folders left
beside OUTPUT, a cache inside OUTPUT), 13 (a user's empty folder and --overwrite), 16 (verify:
a folder in a file's place, --mode none), 17 (a full disk names the file), 18 (a copied or
damaged OUTPUT, ``verify --adopt``).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import EXAMPLE, FAST_ARGS, FAST_MODEL, make_image
from repsample.errors import RepsampleError
from repsample.output.layout import MANIFEST_FIELDS
from repsample.output.publish import STATE, OutputTransaction
from repsample.output.verify import verify_output
from repsample.pipeline import select

GROUPS = ("train/Bag", "val/Bag")
RUN = {**FAST_MODEL, "per_class": 3, "k_min": 2, "k_max": 3}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """INPUT (ten real example images per group) and a warm cache, shared read-only."""
    root = tmp_path_factory.mktemp("world")
    for group in GROUPS:
        (root / "input" / group).mkdir(parents=True)
        for image in sorted((EXAMPLE / group).iterdir())[:10]:
            shutil.copy(image, root / "input" / group / image.name)
    select(root / "input", root / "warm", cache=root / "cache.sqlite", report=False, **RUN)
    return root


def made(world: Path, out: Path, report: bool = False) -> Path:
    """A finished OUTPUT of the world's INPUT."""
    select(world / "input", out, cache=world / "cache.sqlite", report=report, **RUN)
    return out


def repsample(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "repsample", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def select_cli(world: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return repsample("select", world / "input", out, "--cache", world / "cache.sqlite",
                     "--per-class", "3", "--k-min", "2", "--k-max", "3", *FAST_ARGS, "-q", *args)


def one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def stages(beside: Path) -> list[str]:
    """Staging folders (or swapped-out results) left beside OUTPUT."""
    return sorted(p.name for p in beside.iterdir() if ".repsample-stage-" in p.name)


def everything(root: Path) -> dict[str, str]:
    """Every entry under root: path -> 'dir', 'link:<target>' or the file's bytes (hex)."""
    seen = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        seen[rel] = (f"link:{os.readlink(path)}" if path.is_symlink() else
                     "dir" if path.is_dir() else path.read_bytes().hex())
    return seen


# -- 3: .report and its thumbnails are never reached through a link ------------------------------

@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_a_linked_report_folder_is_never_written_through(world: Path, tmp_path: Path, command: str) -> None:
    out = made(world, tmp_path / "out", report=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / ".report")
    (out / ".report").symlink_to(elsewhere)
    result = repsample(command, out, *(["--cache", world / "cache.sqlite"] if command == "evaluate" else []))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert ".report is a symlink" in result.stderr and "remove it" in result.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written outside OUTPUT
    assert (out / ".report").is_symlink() and stages(tmp_path) == []


def test_a_linked_thumbnail_is_never_read(world: Path, tmp_path: Path) -> None:
    out = made(world, tmp_path / "out", report=True)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"the user's secret, not a thumbnail " * 4)
    thumb = sorted((out / ".report" / "thumbs").iterdir())[0]
    thumb.unlink()
    thumb.symlink_to(secret)
    before = (out / "report.html").read_bytes()
    result = repsample("report", out)
    one_line(result, 2, f".report/thumbs/{thumb.name}", "symlink")
    assert base64.b64encode(secret.read_bytes()) not in (out / "report.html").read_bytes()
    assert (out / "report.html").read_bytes() == before and stages(tmp_path) == []
    assert verify_output(out).changed == [f".report/thumbs/{thumb.name}"]


# -- 4: no stage folder is left beside OUTPUT; a cache inside OUTPUT is refused ------------------

def test_reports_with_a_users_entries_in_output_leave_no_stage_folders(world: Path, tmp_path: Path) -> None:
    out = made(world, tmp_path / "out", report=True)
    (out / "to-input").symlink_to(world / "input")
    (out / "train" / "broken").symlink_to(tmp_path / "nowhere")
    (out / "notes.txt").write_text("mine")
    (out / "empty" / "deeper").mkdir(parents=True)
    users = {k: v for k, v in everything(out).items()
             if k.split("/")[0] in ("to-input", "notes.txt", "empty") or k == "train/broken"}
    for _ in range(3):
        result = repsample("report", out, "-q")
        assert result.returncode == 0, result.stderr
        assert stages(tmp_path) == [], result.stderr
    after = everything(out)
    assert {k: after.get(k) for k in users} == users  # each of the user's entries kept as it was
    # Carried over, never adopted: --overwrite still refuses them, and removes nothing.
    one_line(select_cli(world, out, "--overwrite"), 2, "did not write")
    assert {k: everything(out).get(k) for k in users} == users


def test_a_cache_inside_output_is_refused(world: Path, tmp_path: Path) -> None:
    out = made(world, tmp_path / "out")
    before = everything(out)
    for command in ("select", "check"):
        result = repsample(command, world / "input", out, "--cache", out / "cache.sqlite", "--overwrite",
                           *FAST_ARGS, "-q")
        one_line(result, 2, "--cache", "inside OUTPUT")
        assert everything(out) == before and stages(tmp_path) == []
    fresh = repsample("select", world / "input", tmp_path / "new", "--cache", tmp_path / "new" / "c.sqlite",
                      *FAST_ARGS, "-q")
    one_line(fresh, 2, "--cache", "inside OUTPUT")
    assert not (tmp_path / "new").exists()


# -- 13: a user's empty folder is not repsample's to remove -----------------------------------------

def test_overwrite_refuses_a_users_empty_folder(world: Path, tmp_path: Path) -> None:
    out = made(world, tmp_path / "out")
    (out / "train" / "Bag" / "keep-me").mkdir()
    (out / "mine").mkdir()
    result = select_cli(world, out, "--overwrite")
    one_line(result, 2, "did not write", "mine")
    assert (out / "mine").is_dir() and (out / "train" / "Bag" / "keep-me").is_dir()
    (out / "mine").rmdir()
    one_line(select_cli(world, out, "--overwrite"), 2, "train/Bag/keep-me")
    (out / "train" / "Bag" / "keep-me").rmdir()
    assert select_cli(world, out, "--overwrite").returncode == 0
    assert stages(tmp_path) == [] and verify_output(out).ok


_NAME = st.text(st.characters(exclude_characters="/\0", exclude_categories=("Cs",)), min_size=1,
                max_size=6).filter(lambda n: n not in (".", "..", STATE) and len(n.encode()) < 60)
_ENTRY = st.tuples(st.lists(_NAME, min_size=1, max_size=3), st.sampled_from(["file", "folder", "link"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ENTRY, min_size=1, max_size=5))
def test_users_entries_are_never_removed_and_never_adopted(entries: list[tuple[list[str], str]]) -> None:
    """Whatever a user puts in OUTPUT (files, empty folders, symlinks, at any depth, any names):
    --overwrite refuses, an update (report, evaluate) keeps each as it was and leaves no stage
    folder, and the update's inventory never adopts them."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "out"
        with OutputTransaction(out) as first:  # a result of repsample's own
            (first.stage / "train" / "Bag").mkdir(parents=True)
            (first.stage / "train" / "Bag" / "a.jpg").write_bytes(b"ours")
            (first.stage / "manifest.csv").write_text("ours")
            first.publish()
        users = _place(out, entries, root / "outside")
        if not users:
            return
        with pytest.raises(RepsampleError, match="did not write"):
            OutputTransaction(out, replace=True).__enter__()
        with OutputTransaction(out, update=True) as update:
            (update.stage / "report.html").write_text("new")
            update.publish()
        assert {k: everything(out).get(k) for k in users} == users
        assert stages(root) == []
        with pytest.raises(RepsampleError, match="did not write"):
            OutputTransaction(out, replace=True).__enter__()


def _place(out: Path, entries: list[tuple[list[str], str]], outside: Path) -> dict[str, str]:
    """Make the entries that fit (where nothing is yet); returns what each made one is."""
    made_here = {}
    for parts, kind in entries:
        path = out.joinpath(*parts)
        above = [out.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if os.path.lexists(path) or any(a.is_symlink() or (a.exists() and not a.is_dir()) for a in above):
            continue  # taken, or below a file or a link
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_text("the user's")
        elif kind == "folder":
            path.mkdir()
        else:
            path.symlink_to(outside)
        made_here[path.relative_to(out).as_posix()] = ""
    snapshot = everything(out)
    return {k: snapshot[k] for k in made_here}


# -- 16: verify: a folder in a file's place is a difference; --mode none checks the selection -------

def test_verify_a_selected_file_replaced_by_a_folder(world: Path, tmp_path: Path) -> None:
    out = made(world, tmp_path / "out")
    victim = sorted((out / "train" / "Bag").iterdir())[0]
    victim.unlink()
    victim.mkdir()
    result = repsample("verify", out)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"changed: train/Bag/{victim.name}" in result.stdout
    assert "differs from its manifest: 0 missing, 1 changed, 0 extra" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_verify_mode_none_checks_the_selection_file(world: Path, tmp_path: Path, fmt: str) -> None:
    rows = [{"path": str(p), "label": p.parent.name, "split": p.parent.parent.name}
            for p in sorted((world / "input").rglob("*.png"))]
    listing = tmp_path / f"list.{fmt}"
    if fmt == "csv":
        with open(listing, "w", newline="") as fh:
            writer = csv.DictWriter(fh, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert repsample("select", listing, out, "--cache", world / "cache.sqlite", "--mode", "none",
                     "--per-class", "3", *FAST_ARGS, "-q").returncode == 0
    selection = out / f"selection.{fmt}"
    result = repsample("verify", out)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert f"selection.{fmt} lists the 6 selected row(s)" in result.stdout

    lines = selection.read_text().splitlines(keepends=True)
    selection.write_text("".join(lines[:-1]))  # one selected row fewer
    result = repsample("verify", out)
    assert result.returncode == 1 and f"changed: selection.{fmt}" in result.stdout
    selection.unlink()
    result = repsample("verify", out)
    assert result.returncode == 1 and f"missing: selection.{fmt}" in result.stdout


def test_verify_mode_none_checks_an_hf_datasets_selection(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    images = [make_image(tmp_path / "img" / f"{i}.png", seed=i).read_bytes() for i in range(8)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    saved = tmp_path / "saved"
    dataset = datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b in images],
                                          "label": [i % 2 for i in range(8)]}, features=features)
    dataset.save_to_disk(str(saved))
    out = tmp_path / "out"
    select(f"hf://{saved}", out, cache=tmp_path / "cache.sqlite", mode="none", report=False, **RUN)
    result = verify_output(out)
    assert result.ok and result.checked == 6 and result.selection == "selection"
    shutil.rmtree(out / "selection")  # one row fewer than the manifest selects
    datasets.load_from_disk(str(saved)).select(range(5)).save_to_disk(str(out / "selection"))
    assert verify_output(out).changed == ["selection"]
    shutil.rmtree(out / "selection")
    assert verify_output(out).missing == ["selection"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=8))
def test_the_manifests_columns_are_found_whatever_the_listings_are(names: list[str]) -> None:
    """write_selection appends the manifest's columns after the listing's, renaming those that
    clash (``repsample_<name>``): verify finds them whatever the listing's columns are called."""
    from repsample.output.verify import _manifest_columns

    added = [f"repsample_{f}" if f in names else f for f in MANIFEST_FIELDS]
    assert _manifest_columns([*names, *added]) == dict(zip(MANIFEST_FIELDS, added, strict=True))


# -- 17: a full disk names the file it could not write ----------------------------------------------

def test_a_full_disk_during_export_names_the_file(tmp_path: Path, small_disk: Path) -> None:
    rng = np.random.default_rng(7)
    names = []
    for i in range(4):  # noise does not compress: each PNG about 270 kB, bigger than the room left
        path = tmp_path / "big" / "g" / f"noise-{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(path)
        names.append(path.name)
    make_image(tmp_path / "big" / "g" / "small.png", 1)
    cache = tmp_path / "cache.sqlite"
    assert repsample("check", tmp_path / "big", tmp_path / "warm", "--cache", cache, *FAST_ARGS,
                     "-q").returncode == 0  # embeds them, so that the run below only exports
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(0, shutil.disk_usage(small_disk).free - 64 * 1024))
    result = repsample("select", tmp_path / "big", small_disk / "out", "--cache", cache, "--per-class", "5",
                       "--no-report", *FAST_ARGS, "-q")
    line = one_line(result, 3, "No space left on device", "free some space")
    assert "a file" not in line
    assert any(f"/g/{name}: No space left" in line for name in names), line
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # nothing left behind


# -- 18: a copied or damaged OUTPUT: what to do, and verify --adopt ---------------------------------

@pytest.mark.parametrize("how", ["cp -a", "damaged inventory"])
def test_a_copied_or_damaged_output_is_adopted_then_overwritten(world: Path, tmp_path: Path,
                                                                how: str) -> None:
    out = made(world, tmp_path / "out")
    if how == "cp -a":
        target = tmp_path / "copy"
        subprocess.run(["cp", "-a", str(out), str(target)], check=True)
    else:
        target = out
        (out / STATE / "inventory.json").write_text('{"files": [["manifest.csv"')
    line = one_line(select_cli(world, target, "--overwrite"), 2)
    assert f"repsample verify {target} --adopt" in line

    (target / "notes.txt").write_text("mine")  # nothing is adopted where anything differs
    inventory = (target / STATE / "inventory.json").read_bytes()
    result = repsample("verify", target, "--adopt")
    assert result.returncode == 1 and "extra: notes.txt" in result.stdout
    assert "nothing adopted" in result.stderr
    assert (target / STATE / "inventory.json").read_bytes() == inventory
    (target / "notes.txt").unlink()

    result = repsample("verify", target, "--adopt")
    assert result.returncode == 0 and "adopted" in result.stdout, (result.stdout, result.stderr)
    result = select_cli(world, target, "--overwrite", "--per-class", "2")
    assert result.returncode == 0, result.stderr
    assert verify_output(target).ok and stages(tmp_path) == []
    assert sum(1 for p in target.rglob("*.png")) == 4  # the new selection, the old one removed


def test_adopt_takes_nothing_a_user_edited_the_manifest_to_claim(world: Path, tmp_path: Path) -> None:
    """A manifest is a file a user can edit: adoption still needs every file to match it and
    nothing else there, so a user's file it does not name is never adopted, and never removed."""
    out = made(world, tmp_path / "out")
    (out / STATE / "inventory.json").unlink()
    (out / "val" / "Bag" / "mine.png").write_bytes(b"the user's picture")
    (out / "empty").mkdir()
    result = repsample("verify", out, "--adopt")
    assert result.returncode == 1 and "extra: val/Bag/mine.png" in result.stdout
    assert "extra: empty/" in result.stdout
    one_line(select_cli(world, out, "--overwrite"), 2)
    assert (out / "val" / "Bag" / "mine.png").read_bytes() == b"the user's picture"
    assert (out / "empty").is_dir()
