"""repsample check and the hygiene pass: real images, real SQLite cache, the real CLI.

Random weights are enough here: embeddings only propose candidates, the pixel check (pHash and
mean colour) decides, and it does not depend on the model.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from conftest import DATA, FAST_MODEL, TreeFactory
from repsample import check  # the public entry point
from repsample.cache import ContentCache
from repsample.cli import cli
from repsample.fsio import hash_file
from repsample.hygiene.dedup import group_duplicates
from repsample.hygiene.leaks import dataset_splits, split_of
from repsample.hygiene.near import candidate_pairs
from repsample.hygiene.pairs import near_duplicates

FAST = FAST_MODEL


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def plant(root: Path) -> None:
    """An exact copy, a JPEG re-encode, a leak into test, and a broken file."""
    shutil.copy(root / "train/a/img_000.jpg", root / "train/a/z_copy.jpg")
    Image.open(root / "train/a/img_001.jpg").save(root / "train/a/z_reencoded.jpg", quality=40)
    shutil.copy(root / "train/a/img_002.jpg", root / "test/a/leaked.jpg")
    shutil.copy(DATA / "truncated.jpg", root / "train/b/broken.jpg")


def _brute_force(X: np.ndarray, threshold: float, k: int) -> set[tuple[int, int]]:
    """Each row's k most similar other rows at or above the threshold, by the full matrix."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    pairs = set()
    for i, row in enumerate(S):
        for j in np.argsort(-row)[:k]:
            if row[j] >= threshold:
                pairs.add((min(i, int(j)), max(i, int(j))))
    return pairs


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Vectors in 30 loose clusters with 40 planted near-copies (row 2000 + i copies row i)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (30, dim))
    X = centres[rng.integers(0, 30, n)] + rng.normal(0, 0.7, (n, dim))
    X[2000:2040] = X[:40] + rng.normal(0, 0.02, (40, dim))
    return X.astype(np.float32)


def test_exact_search_is_each_rows_nearest_above_threshold() -> None:
    X = _clustered(2500, 24)
    pairs = candidate_pairs(X, 0.9, neighbours=3)
    found = set(zip(pairs.first.tolist(), pairs.second.tolist(), strict=True))
    assert found == _brute_force(X, 0.9, 3)
    assert (pairs.first < pairs.second).all() and len(pairs) >= 40
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    exact = np.einsum("ij,ij->i", U[pairs.first], U[pairs.second])
    np.testing.assert_allclose(pairs.similarity, exact, atol=1e-5)


def test_approximate_search_finds_the_planted_copies_with_exact_similarities() -> None:
    X = _clustered(3000, 300)  # above PCA's 256 dimensions, so the projection is used
    pairs = candidate_pairs(X, 0.95, exact_up_to=1000)  # force the IVF path
    found = set(zip(pairs.first.tolist(), pairs.second.tolist(), strict=True))
    assert {(i, 2000 + i) for i in range(40)} <= found
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    exact = np.einsum("ij,ij->i", U[pairs.first], U[pairs.second])
    np.testing.assert_allclose(pairs.similarity, exact, atol=1e-5)


def test_confirmed_pairs_come_from_the_cache_on_a_rerun(make_tree: TreeFactory, tmp_path: Path,
                                                         cache_path: Path) -> None:
    root = make_tree({"a": 6}, ext=".jpg")
    Image.open(root / "a/img_001.jpg").save(root / "a/z_reencoded.jpg", quality=40)
    files = sorted((root / "a").iterdir())
    contents = [hash_file(f) for f in files]
    X = np.random.default_rng(0).normal(0, 1, (len(files), 8)).astype(np.float32)
    X[-1] = X[1] * 1.01  # the re-encode's vector next to its original's
    far = X.copy()
    far[-1] = -X[1]  # no longer a candidate: only a stored answer can still pair them
    by_content = dict(zip(contents, files, strict=True))
    with ContentCache(cache_path) as cache:
        first = near_duplicates(contents, X, 0.9, "vectors-a", cache, by_content)
        assert list(zip(first.first.tolist(), first.second.tolist(), strict=True)) == [(1, len(files) - 1)]
        again = near_duplicates(contents, far, 0.9, "vectors-a", cache, by_content)
        assert again.first.tolist() == first.first.tolist()
        other_model = near_duplicates(contents, far, 0.9, "vectors-b", cache, by_content)
    assert len(other_model) == 0  # other vectors' name: searched again


def test_dedup_keeps_first_path_without_chains() -> None:
    # contents 0~1 and 1~2 are near pairs, 0 and 2 are not: 2 must not be a duplicate of 0.
    neighbours = {0: [(1, 0.9)], 1: [(0, 0.9), (2, 0.85)], 2: [(1, 0.85)]}
    files, content = [0, 1, 2, 3], [0, 1, 2, 0]  # file 3 is an exact copy of file 0
    assert group_duplicates(files, content, neighbours) == {1: (0, 0.9), 3: (0, 1.0)}
    kept_first = group_duplicates(files, content, neighbours, kept={1})
    assert kept_first == {0: (1, 0.9), 2: (1, 0.85), 3: (1, 0.9)}


def test_splits_only_where_there_are_two() -> None:
    assert split_of("train/cat") == "train" and split_of("cat") is None and split_of(".") is None
    assert dataset_splits(["train/a", "test/a"]) == ["test", "train"]
    assert dataset_splits(["train/a", "train/b"]) == []
    assert dataset_splits(["a", "b", "."]) == []


def test_check_finds_planted_findings(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree({"train/a": 12, "train/b": 8, "test/a": 5}, ext=".jpg")
    plant(root)
    result = check(root, tmp_path / "out", cache=cache_path, **FAST)

    rows = read_csv(result.csv_path)
    found = {(r["kind"], r["match"], r["path"], r["other"]) for r in rows}
    assert found == {
        ("duplicate", "exact", "train/a/z_copy.jpg", "train/a/img_000.jpg"),
        ("duplicate", "near", "train/a/z_reencoded.jpg", "train/a/img_001.jpg"),
        ("leak", "exact", "test/a/leaked.jpg", "train/a/img_002.jpg"),
        ("leak", "exact", "train/a/img_002.jpg", "test/a/leaked.jpg"),
        ("unreadable", "", "train/b/broken.jpg", ""),
    }
    summary = json.loads(result.json_path.read_text())["summary"]
    assert summary["exact_duplicates"] == 1 and summary["near_duplicates"] == 1
    assert summary["leaked_by_split"] == {"test": 1, "train": 1} and summary["unreadable"] == 1


def test_no_splits_means_cross_group_not_leak(make_tree: TreeFactory, tmp_path: Path,
                                              cache_path: Path) -> None:
    root = make_tree({"cats": 6, "dogs": 6})
    shutil.copy(root / "cats/img_000.jpg", root / "dogs/z_same.jpg")
    result = check(root, tmp_path / "out", cache=cache_path, **FAST)
    kinds = {(r["kind"], r["path"]) for r in read_csv(result.csv_path)}
    assert kinds == {("cross_group", "cats/img_000.jpg"), ("cross_group", "dogs/z_same.jpg")}
    assert result.summary()["splits"] == []


def test_cli_check_prints_summary_and_refuses_to_clobber(make_tree: TreeFactory, tmp_path: Path,
                                                         cache_path: Path) -> None:
    root = make_tree({"train/a": 12, "train/b": 8, "test/a": 5})
    plant(root)
    args = ["check", str(root), str(tmp_path / "out"), "--cache", str(cache_path),
            "--model", "resnet18", "--weights", "random"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "leaked: in test" in first.output and "check.csv" in first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = CliRunner().invoke(cli, [*args, "--overwrite", "--dup-threshold", "1.5"])
    assert bad.exit_code == 2 and "--dup-threshold must be in (0, 1]" in bad.output


def test_check_reads_a_url_input_and_honours_the_configs_overwrite(
        make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    import uuid

    import fsspec

    from repsample import SelectConfig

    root = make_tree({"train/a": 5, "test/a": 3})
    shutil.copy(root / "train/a/img_001.jpg", root / "test/a/leaked.jpg")
    bucket = f"memory://check-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        fs.pipe_file(f"{bucket[9:]}/{path.relative_to(root).as_posix()}", path.read_bytes())
    config = SelectConfig(cache=cache_path, overwrite=True, **FAST)
    try:
        remote = check(bucket, tmp_path / "out", config)
    finally:
        fs.rm(bucket[9:], recursive=True)
    assert json.loads(remote.json_path.read_text())["input"] == bucket
    local = check(root, tmp_path / "out", config)  # overwrite comes from the config
    assert remote.summary() == local.summary() and local.summary()["leaked_images"] == 2
