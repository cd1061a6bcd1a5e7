"""Hugging Face datasets as INPUT (hf://NAME_OR_PATH), built on disk with `datasets` itself: a
saved DatasetDict of image bytes with a ClassLabel, and an imagefolder read by load_dataset."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, FAST_MODEL, TreeFactory
from repsample.cli import cli
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.output.verify import verify_output
from repsample.pipeline import select

RUN = {**FAST_MODEL, "per_class": 4, "k_min": 2, "k_max": 3, "report": False}
NAMES = ["cat", "dog"]


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """datasets' own cache in the test's folder, and no hub: everything here is local."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def saved_dataset(root: Path, tmp_path: Path) -> Path:
    """The images of a split/label tree as a DatasetDict (image bytes, ClassLabel), saved."""
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES)})
    splits = {}
    for split in ("train", "test"):
        files = sorted((root / split).rglob("*.jpg"))
        splits[split] = datasets.Dataset.from_dict(
            {"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
             "label": [NAMES.index(f.parent.name) for f in files]}, features=features)
    path = tmp_path / "saved"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def selected_contents(manifest: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in read_manifest(manifest):
        if r["status"] == "selected":
            out.setdefault(r["group"], set()).add(r["hash"])
    return out


def test_a_saved_dataset_dict_selects_like_its_folder_tree(make_tree: TreeFactory, tmp_path: Path,
                                                           cache_path: Path) -> None:
    root = make_tree({"train/cat": 9, "train/dog": 7, "test/cat": 3, "test/dog": 6})
    saved = saved_dataset(root, tmp_path)
    result = select(f"hf://{saved}", tmp_path / "out", cache=cache_path, **RUN)
    assert [(g.name, g.images, g.selected) for g in result.groups] == [
        ("test/cat", 3, 3), ("test/dog", 6, 4), ("train/cat", 9, 4), ("train/dog", 7, 4)]
    rows = read_manifest(result.manifest_path)
    assert {r["path"] for r in rows if r["group"] == "test/cat"} == {"test/cat/0.jpg", "test/cat/1.jpg",
                                                                    "test/cat/2.jpg"}
    folder = select(root, tmp_path / "folder", cache=cache_path, **RUN)
    # The same contents embedded once (the cache keys on content), the same images in each group.
    assert json.loads(folder.run_record_path.read_text())["totals"]["embedded"] == 0
    assert {g: len(h) for g, h in selected_contents(result.manifest_path).items()} == {
        g: len(h) for g, h in selected_contents(folder.manifest_path).items()}
    for rel in result.selected():  # exported images are the dataset's bytes, ready for imagefolder
        assert (tmp_path / "out" / rel).stat().st_size > 0
    assert verify_output(tmp_path / "out").ok
    back = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "out" / "train"))
    assert back["train"].num_rows == 8


def test_mode_none_saves_the_subset_as_a_dataset(make_tree: TreeFactory, tmp_path: Path,
                                                 cache_path: Path) -> None:
    root = make_tree({"train/cat": 9, "train/dog": 7, "test/cat": 3, "test/dog": 6})
    saved = saved_dataset(root, tmp_path)
    result = select(f"hf://{saved}", tmp_path / "out", cache=cache_path, mode="none", **RUN)
    subset = datasets.load_from_disk(str(tmp_path / "out" / "selection"))
    assert sorted(subset) == ["test", "train"]
    original = datasets.load_from_disk(str(saved))
    for split in ("train", "test"):
        picked = sorted(int(Path(p).stem) for p in result.selected() if p.startswith(f"{split}/"))
        assert subset[split].num_rows == len(picked)
        assert subset[split]["label"] == original[split].select(picked)["label"]
    assert verify_output(tmp_path / "out").ok


def test_one_split_and_an_imagefolder(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/cat": 6, "train/dog": 5, "test/cat": 2})
    saved = saved_dataset(root, tmp_path)
    only = select(f"hf://{saved}", tmp_path / "only", cache=cache_path, hf_split="test", **RUN)
    assert [g.name for g in only.groups] == ["test/cat"]
    # A folder load_dataset reads as imagefolder: rows name files, which keep their names.
    folder = select(f"hf://{root / 'train'}", tmp_path / "folder", cache=cache_path, **RUN)
    assert [(g.name, g.images) for g in folder.groups] == [("train/cat", 6), ("train/dog", 5)]
    assert set(folder.selected("train/dog")) <= {f"train/dog/img_{i:03d}.jpg" for i in range(5)}


def test_check_on_a_dataset(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/cat": 5, "test/cat": 3})
    shutil.copy(root / "train/cat/img_000.jpg", root / "test/cat/leaked.jpg")
    saved = saved_dataset(root, tmp_path)
    result = CliRunner().invoke(cli, ["check", f"hf://{saved}", str(tmp_path / "check"), "--cache",
                                      str(cache_path), *FAST_ARGS], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "check" / "check.json").read_text())["summary"]
    assert summary["images"] == 9 and summary["leaked_by_split"]["test"] == 1


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--hf-split", "validation"], ["--hf-split", "no split 'validation'", "train, test"]),
        (["--label-column", "fine"], ["no column 'fine'", "image, label"]),
        (["--mode", "hardlink"], ["--mode", "choose copy or none"]),
    ],
)
def test_bad_dataset_options_are_one_line(make_tree: TreeFactory, tmp_path: Path, extra: list[str],
                                          needles: list[str]) -> None:
    saved = saved_dataset(make_tree({"train/cat": 2, "test/dog": 2}), tmp_path)
    result = CliRunner().invoke(cli, ["select", f"hf://{saved}", str(tmp_path / "out"), *extra,
                                      *FAST_ARGS], catch_exceptions=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, result.output)


def test_a_dataset_that_is_not_there(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", f"hf://{tmp_path / 'nothing'}", str(tmp_path / "out"),
                                      *FAST_ARGS], catch_exceptions=False)
    assert result.exit_code == 2 and "cannot load the dataset" in result.output, result.output


def test_without_datasets_installed_the_error_names_the_extra(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # what an import finds where it is absent
    result = CliRunner().invoke(cli, ["select", "hf://some/dataset", str(tmp_path / "out"), *FAST_ARGS],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("Error: datasets is not installed; run: "
                                     "pip install 'repsample[hf]'")


def test_a_hub_name_that_cannot_be_had_is_one_line(tmp_path: Path) -> None:
    """Offline (CI reaches no hub) or online (no such dataset): exactly one line, exit 2; the Hub
    client's own log lines about failed requests stay quiet."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty user cache: nothing to fall back on
    done = subprocess.run([sys.executable, "-m", "repsample", "select", "hf://repsample-tests/no-such-set",
                           str(tmp_path / "out"), "-q"], capture_output=True, text=True, env=env,
                          timeout=300)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Error: cannot load the dataset hf://repsample-tests/no-such-set")
