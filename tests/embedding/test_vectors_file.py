"""--embeddings FILE: vectors computed elsewhere (.npy + paths, .npz, .parquet), matched to INPUT's
files by relative path or content hash, give the same manifest and evaluation as the model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, FAST_MODEL, TreeFactory
from repsample import embed_images
from repsample.cli import cli
from repsample.embedding.vectors_file import read_vectors
from repsample.fsio import hash_file

SELECT = ["--per-class", "6", "--k-min", "2", "--k-max", "3", "-q", "--device", "cpu"]
TREE = {"train/a": 12, "train/b": 10, "test/a": 5, "test/b": 5}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def choices(out: Path) -> list[tuple[str, ...]]:
    return [(r["path"], r["status"], r["cluster"], r["rank"]) for r in manifest(out)]


def model_vectors(root: Path, cache: Path) -> tuple[list[str], np.ndarray]:
    """What a user brings: every image's relative path and its vector (here from the model)."""
    rels = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    embedded = embed_images([root / r for r in rels], **FAST_MODEL, cache=cache, device="cpu")
    assert embedded.errors == [None] * len(rels)
    return rels, embedded.vectors


def one_line_error(code: int, out: str, *needles: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), out
    for needle in needles:
        assert needle in lines[0], (needle, out)


def test_npy_vectors_select_and_evaluate_as_the_model(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree(TREE)
    rels, vectors = model_vectors(root, tmp_path / "model.sqlite")
    np.save(tmp_path / "clip.npy", vectors)
    (tmp_path / "clip.txt").write_text("\n".join(rels) + "\n")

    model_out, file_out = tmp_path / "by-model", tmp_path / "by-file"
    code, text = run("select", str(root), str(model_out), *SELECT, *FAST_ARGS,
                     "--cache", str(tmp_path / "model.sqlite"))
    assert code == 0, text
    code, text = run("select", str(root), str(file_out), *SELECT, "--embeddings",
                     str(tmp_path / "clip.npy"), "--cache", str(tmp_path / "file.sqlite"))
    assert code == 0, text
    assert choices(file_out) == choices(model_out)
    assert (file_out / "report.html").is_file()
    for out in (model_out, file_out):
        code, text = run("evaluate", str(out))
        assert code == 0, text
    scores = [json.loads((out / "evaluation.json").read_text()) for out in (model_out, file_out)]
    assert scores[1]["groups"] == scores[0]["groups"]
    assert scores[1]["linear_probe"]["selection"] == scores[0]["linear_probe"]["selection"]

    record = json.loads((file_out / "run.json").read_text())
    assert record["model"]["name"] == f"embeddings:{tmp_path / 'clip.npy'}"
    assert record["model"]["dim"] == 512 and record["totals"]["embedded"] == 0
    assert record["model"]["cache_key"].startswith("embeddings-sha256-")


def test_npz_parquet_and_keys_by_absolute_path_or_hash(make_tree: TreeFactory, tmp_path: Path) -> None:
    """Every layout reads to the same rows; a key may be an absolute path under INPUT or the
    content hash manifest.csv shows."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root = make_tree({"a": 8})
    rels, vectors = model_vectors(root, tmp_path / "model.sqlite")
    keys = [str(root / r) if i % 2 else hash_file(root / r) for i, r in enumerate(rels)]
    np.savez(tmp_path / "v.npz", paths=np.array(keys), embeddings=vectors)
    pq.write_table(pa.table({"image_path": keys, "embedding": vectors.tolist()}), tmp_path / "v.parquet")
    np.save(tmp_path / "v.npy", vectors)
    pq.write_table(pa.table({"image_path": keys}), tmp_path / "meta.parquet")  # clip-retrieval's pair

    outs = {}
    for name, args in (("npz", ["--embeddings", "v.npz"]), ("parquet", ["--embeddings", "v.parquet"]),
                       ("npy", ["--embeddings", "v.npy", "--embeddings-paths", "meta.parquet"])):
        outs[name] = tmp_path / name
        args = [str(tmp_path / a) if a.startswith(("v.", "meta")) else a for a in args]
        code, text = run("select", str(root), str(outs[name]), *SELECT, "--per-class", "3", *args,
                         "--cache", str(tmp_path / "c.sqlite"), "--no-report")
        assert code == 0, text
        assert all(r["status"] != "error" for r in manifest(outs[name]))
    assert choices(outs["npz"]) == choices(outs["parquet"]) == choices(outs["npy"])
    assert np.array_equal(read_vectors(tmp_path / "v.parquet").vectors, vectors)


def test_files_without_a_vector_are_error_rows_or_embedded(make_tree: TreeFactory,
                                                           tmp_path: Path) -> None:
    root = make_tree({"a": 10})
    rels, vectors = model_vectors(root, tmp_path / "model.sqlite")
    np.save(tmp_path / "part.npy", vectors[2:])
    (tmp_path / "part.txt").write_text("\n".join(rels[2:]))

    errors_out, filled_out, model_out = tmp_path / "errors", tmp_path / "filled", tmp_path / "model"
    code, text = run("select", str(root), str(errors_out), *SELECT, "--embeddings",
                     str(tmp_path / "part.npy"), "--cache", str(tmp_path / "c.sqlite"), "--no-report")
    assert code == 0, text
    rows = {r["path"]: r for r in manifest(errors_out)}
    assert [p for p, r in rows.items() if r["status"] == "error"] == rels[:2]
    assert rows[rels[0]]["error"] == "no vector in part.npy"

    code, text = run("select", str(root), str(filled_out), *SELECT, *FAST_ARGS, "--embeddings",
                     str(tmp_path / "part.npy"), "--missing-vectors", "embed",
                     "--cache", str(tmp_path / "c.sqlite"), "--no-report")
    assert code == 0, text
    code, text = run("select", str(root), str(model_out), *SELECT, *FAST_ARGS,
                     "--cache", str(tmp_path / "model.sqlite"), "--no-report")
    assert code == 0, text
    assert choices(filled_out) == choices(model_out)
    assert json.loads((filled_out / "run.json").read_text())["totals"]["embedded"] == 2

    code, text = run("select", str(root), str(tmp_path / "no"), *SELECT, "--embeddings",
                     str(tmp_path / "part.npy"), "--missing-vectors", "embed",
                     "--cache", str(tmp_path / "c.sqlite"))  # the default model is 1280-d
    one_line_error(code, text, "--missing-vectors", "512-d", "1280-d")


def _ragged_parquet(path: Path, keys: list[str], vectors: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = vectors.tolist()
    rows[3] = rows[3][:-1]
    pq.write_table(pa.table({"path": keys, "vector": rows}), path)


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("nan", ["--embeddings", "row 4", "NaN"]),
        ("duplicate", ["--embeddings", "appears twice", "rows 1 and 2"]),
        ("short_paths", ["--embeddings", "6 vectors but 5 paths"]),
        ("no_paths_file", ["--embeddings", "needs its paths file"]),
        ("ragged", ["--embeddings", "row 3", "7-d", "8-d"]),
        ("no_match", ["--embeddings", "none of its 6 rows matches"]),
        ("not_a_matrix", ["--embeddings", "not a (rows, dim) matrix"]),
        ("format", ["--embeddings", "is not one of .npy, .npz, .parquet"]),
    ],
)
def test_bad_embeddings_are_one_line(make_tree: TreeFactory, tmp_path: Path, case: str,
                                     needles: list[str]) -> None:
    root = make_tree({"a": 6})
    keys = [f"a/img_{i:03d}.jpg" for i in range(6)]
    vectors = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    target = tmp_path / "v.npy"
    if case == "nan":
        vectors[4, 2] = np.nan
    elif case == "duplicate":
        keys[2] = "./" + keys[1]
    elif case == "short_paths":
        keys = keys[:5]
    elif case == "no_match":
        keys = [f"elsewhere/{k}" for k in keys]
    elif case == "not_a_matrix":
        vectors = vectors[:, 0]
    np.save(target, vectors)
    if case != "no_paths_file":
        (tmp_path / "v.txt").write_text("\n".join(keys))
    if case == "ragged":
        target = tmp_path / "v.parquet"
        _ragged_parquet(target, keys, vectors)
    elif case == "format":
        target = tmp_path / "v.csv"
        target.write_text("path,x\n")
    code, text = run("select", str(root), str(tmp_path / "out"), *SELECT, "--embeddings", str(target),
                     "--cache", str(tmp_path / "c.sqlite"))
    one_line_error(code, text, *needles)
    assert not (tmp_path / "out").exists()


def test_embeddings_options_that_do_not_fit(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3})
    (tmp_path / "p.txt").write_text("a/img_000.jpg\n")
    code, text = run("select", str(root), str(tmp_path / "out"), "--embeddings-paths",
                     str(tmp_path / "p.txt"))
    one_line_error(code, text, "--embeddings-paths needs --embeddings")
    np.save(tmp_path / "p.npy", np.ones((1, 4), np.float32))
    code, text = run("select", str(root), str(tmp_path / "out"), "--embeddings", str(tmp_path / "p.npy"),
                     "--engine", "ray")
    one_line_error(code, text, "--embeddings runs with --engine local")
