"""Values a user (or a hostile INPUT) controls, taken at their edges (issue 22, items 9-13 and 19):
a --drop-outliers share near 1, vectors near float32's limit, groups named like OUTPUT's own
files, file names a spreadsheet would run as formulas, options that would be ignored, and the
line ends of the CSV files. Every test drives the real command line on real files; the
properties (hypothesis) run the same code over generated shares, scales and names.
"""

from __future__ import annotations

import csv
import io
import os
import re
import string
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from conftest import TreeFactory, make_image
from repsample.cli import cli
from repsample.fsio import hash_file
from repsample.output.records import kept_paths, read_manifest, read_run

FORMULA_START = tuple("=+-@\t\r")
NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
SELECT = ["--k-min", "2", "--k-max", "3", "-q"]
SLOW = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def one_line_error(code: int, out: str, *needles: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), (code, out)
    for needle in needles:
        assert needle in lines[0], (needle, out)
    return lines[0]


def vectors_by_hash(root: Path, out: Path, scale: float = 1.0, dim: int = 8, seed: int = 0,
                    dtype: type = np.float32) -> Path:
    """An --embeddings file for every image under root, keyed by content hash (so that any file
    name works), random vectors times scale."""
    hashes = sorted({hash_file(p) for p in root.rglob("*") if p.is_file()})  # copies: one row
    rng = np.random.default_rng(seed)
    vectors = (rng.normal(size=(len(hashes), dim)) * scale).astype(dtype)
    np.savez(out, paths=np.array(hashes), embeddings=vectors)
    return out


def raw_cells(path: Path) -> list[list[str]]:
    """A CSV file's cells as a spreadsheet sees them: not unescaped."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula(path: Path) -> None:
    for cells in raw_cells(path):
        for cell in cells:
            assert not cell.startswith(FORMULA_START) or NUMBER.fullmatch(cell), (path.name, cell)


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if "repsample-stage" in p.name]


# -- 9: --drop-outliers near 1 ------------------------------------------------------------------


def test_drop_outliers_near_one_leaves_something_to_select(make_tree: TreeFactory,
                                                           tmp_path: Path) -> None:
    root = make_tree({"a": 8, "b": 9})
    vectors = vectors_by_hash(root, tmp_path / "v.npz")
    for share in ("0.999", "0.99", "0.95"):
        out = tmp_path / f"out-{share}"
        code, text = run("select", root, out, "--embeddings", vectors, "--per-class", "5",
                         "--drop-outliers", share, "--cache", tmp_path / "c.sqlite", "--no-report",
                         *SELECT)
        assert code == 0, text
        record = read_run(out).record.data
        for name, size in (("a", 8), ("b", 9)):
            group = record["groups"][name]
            assert group["outliers"] == size - 1 and group["selected"] == 1, (share, group)


@given(share=st.floats(0, 1, exclude_max=True), size=st.integers(1, 400), seed=st.integers(0, 99))
@example(share=0.999, size=40, seed=0)
@settings(max_examples=300, deadline=None)
def test_a_share_below_one_never_takes_a_whole_group(share: float, size: int, seed: int) -> None:
    from repsample.hygiene.outliers import ImageScores

    outlier = np.random.default_rng(seed).random(size) if size > 1 else np.full(1, np.nan)
    scores = ImageScores(outlier.copy(), outlier, outlier.copy())
    taken = scores.top_outliers(share)
    assert len(taken) < size or size == 0
    expected = 0 if size == 1 else min(int(share * size + 0.5), size - 1)  # round half up
    assert len(taken) == expected
    assert len(set(taken)) == len(taken)


# -- 10: vectors near float32's limit --------------------------------------------------------------


def test_vectors_too_long_are_refused_before_anything_is_written(make_tree: TreeFactory,
                                                                 tmp_path: Path) -> None:
    root = make_tree({"a": 6, "b": 6})
    vectors = vectors_by_hash(root, tmp_path / "v.npz", scale=1e37)
    out, cache = tmp_path / "out", tmp_path / "c.sqlite"
    code, text = run("select", root, out, "--embeddings", vectors, "--cache", cache, *SELECT)
    one_line_error(code, text, "--embeddings", "row 0", "long", "scale them down")
    assert not out.exists() and not cache.exists() and not leftovers(tmp_path)
    # finite in float64, infinite in float32: still the length, not "infinite values"
    vectors = vectors_by_hash(root, tmp_path / "w.npz", scale=1e300, dtype=np.float64)
    code, text = run("select", root, out, "--embeddings", vectors, "--cache", cache, *SELECT)
    one_line_error(code, text, "--embeddings", "long")


@pytest.fixture(scope="module")
def scale_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scales") / "data"
    for g, group in enumerate(("a", "b")):
        for i in range(6):
            make_image(root / group / f"img_{i}.png", seed=100 * g + i)
    return root


@given(exponent=st.integers(-45, 38), seed=st.integers(0, 9))
@example(exponent=37, seed=0)
@example(exponent=19, seed=0)
@SLOW
def test_whatever_the_vectors_scale_the_tool_reads_back_what_it_wrote(
        scale_tree: Path, tmp_path_factory: pytest.TempPathFactory, exponent: int, seed: int) -> None:
    work = tmp_path_factory.mktemp("scale")
    vectors = vectors_by_hash(scale_tree, work / "v.npz", scale=10.0 ** exponent, seed=seed)
    out = work / "out"
    code, text = run("select", scale_tree, out, "--embeddings", vectors, "--per-class", "3",
                     "--cache", work / "c.sqlite", *SELECT)
    if code == 2:  # refused at load, in one line
        one_line_error(code, text, "--embeddings", "long")
        assert exponent >= 11 and not out.exists()
        return
    assert code == 0 and "report not written" not in text, text
    run_ = read_run(out)  # every number in the manifest is finite
    assert sum(r.status == "selected" for r in run_.manifest.rows) == 6
    code, text = run("verify", out)
    assert code == 0, text
    code, text = run("report", out)
    assert code == 0, text


# -- 11: groups named like OUTPUT's own files ---------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.csv", ".repsample", "Run.JSON", "check.json",
                                  ".report", "selection.parquet"])
def test_a_folder_named_like_an_output_file_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "data"
    for i in range(3):
        make_image(root / name / f"i{i}.png", seed=i)
        make_image(root / "ok" / f"i{i}.png", seed=10 + i)
    out, cache = tmp_path / "out", tmp_path / "c.sqlite"
    code, text = run("select", root, out, "--cache", cache, "--model", "resnet18", "--weights",
                     "random", *SELECT)
    one_line_error(code, text, f"group {name!r}", "rename it")
    assert not out.exists() and not cache.exists() and not leftovers(tmp_path)


def test_a_top_folder_file_named_like_an_output_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(3):
        make_image(root / f"i{i}.png", seed=i)
    make_image(root / "Report.HTML", seed=9, fmt="PNG")  # exported to OUTPUT/Report.HTML
    out = tmp_path / "out"
    code, text = run("select", root, out, "--extensions", ".png,.html", "--cache",
                     tmp_path / "c.sqlite", *SELECT)
    one_line_error(code, text, "file 'Report.HTML' of INPUT's top folder", "rename it")
    assert not out.exists() and not leftovers(tmp_path)


def test_a_listing_label_named_like_an_output_file_is_refused(tmp_path: Path) -> None:
    images = [make_image(tmp_path / "img" / f"i{i}.png", seed=i) for i in range(4)]
    out = tmp_path / "out"
    out.mkdir()  # an existing, empty OUTPUT stays empty
    for label in ("manifest.csv", ".repsample", "REPORT.html"):
        listing = tmp_path / "list.csv"
        listing.write_text("path,label\n" + "".join(
            f"{p.relative_to(tmp_path).as_posix()},{label if i % 2 else 'fine'}\n"
            for i, p in enumerate(images)))
        code, text = run("select", listing, out, "--cache", tmp_path / "c.sqlite", *SELECT)
        one_line_error(code, text, f"group {label!r}")
        assert list(out.iterdir()) == [] and not (tmp_path / "c.sqlite").exists()
        assert not leftovers(tmp_path)


def test_output_names_hold_every_name_repsample_writes(make_tree: TreeFactory,
                                                       tmp_path: Path) -> None:
    from repsample.output.layout import (
        CHECK_CSV,
        CHECK_JSON,
        EVALUATION,
        OUTLIERS_CSV,
        OUTPUT_NAMES,
        REPORT,
        REPORT_ASSETS,
        SELECTIONS,
        STATE,
    )
    from repsample.output.verify import RECORDS

    named = {CHECK_JSON, CHECK_CSV, OUTLIERS_CSV, *RECORDS, REPORT_ASSETS, *SELECTIONS, STATE,
             EVALUATION, REPORT}
    assert named <= OUTPUT_NAMES
    # and what runs really leave at OUTPUT's top, besides the group folders
    root = make_tree({"a": 6, "b": 6})
    vectors = vectors_by_hash(root, tmp_path / "v.npz")
    out, checked = tmp_path / "out", tmp_path / "checked"
    cache = tmp_path / "c.sqlite"
    assert run("select", root, out, "--embeddings", vectors, "--cache", cache, *SELECT)[0] == 0
    assert run("evaluate", out, "--seeds", "2")[0] == 0
    assert run("check", root, checked, "--embeddings", vectors, "--cache", cache, "-q")[0] == 0
    written = {p.name for p in out.iterdir()} - {"a", "b"} | {p.name for p in checked.iterdir()}
    assert written <= OUTPUT_NAMES, written - OUTPUT_NAMES


RESERVED = ["manifest.csv", "run.json", "check.csv", "check.json", "outliers.csv", "report.html",
            ".report", ".repsample", "evaluation.json", "selection", "selection.csv",
            "selection.jsonl", "selection.parquet"]


@given(name=st.one_of(st.sampled_from(RESERVED), st.text(min_size=1, max_size=20)),
       upper=st.lists(st.booleans(), min_size=20, max_size=20),
       below=st.sampled_from(["", "/sub"]))
@settings(max_examples=300, deadline=None)
def test_group_names_are_refused_exactly_when_they_take_an_output_name(
        name: str, upper: list[bool], below: str) -> None:
    from repsample.errors import UsageError
    from repsample.inputs.folder import Group, ImageFile
    from repsample.output.layout import check_group_names

    assume("/" not in name and name not in (".", ".."))
    cased = "".join(c.upper() if u else c for c, u in zip(name, upper, strict=False)) + name[20:]
    group = Group(cased + below, (ImageFile(Path("/x"), f"{cased}{below}/x.png", cased, 1, 1),))
    reserved = {*RESERVED, *(f".{n}.repsample-tmp" for n in RESERVED)}  # their temporary names
    taken = cased.casefold() in reserved
    if taken:
        with pytest.raises(UsageError, match="rename it"):
            check_group_names([group])
    else:
        check_group_names([group])


# -- 12: names a spreadsheet would run --------------------------------------------------------------


DANGEROUS = ["=1+2.png", "@SUM(A1).png", "+x.png", "-y.png", "\tt.png", "\rr.png", "'=q.png",
             "a\rb.png", "''@w.png"]


def test_formula_names_are_escaped_in_every_csv_and_read_back_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i, name in enumerate(DANGEROUS):
        make_image(root / name, seed=i)
        make_image(root / "=cmd|' calc'!A0" / f"{i}.png", seed=100 + i)
    make_image(root / "=cmd|' calc'!A0" / "-dup.png", seed=100)  # a duplicate: in check.csv
    vectors = vectors_by_hash(root, tmp_path / "v.npz")
    out, cache = tmp_path / "out", tmp_path / "c.sqlite"
    code, text = run("select", root, out, "--embeddings", vectors, "--cache", cache,
                     "--per-class", "5", *SELECT)
    assert code == 0, text
    for name in ("manifest.csv", "check.csv"):
        assert_no_formula(out / name)
    manifest = read_manifest(out / "manifest.csv")
    assert {r.path for r in manifest.rows if r.group == "."} == set(DANGEROUS)
    assert {r.group for r in manifest.rows} == {".", "=cmd|' calc'!A0"}
    code, text = run("verify", out)
    assert code == 0, text

    from repsample.output.files import read_csv_rows

    check_rows = read_csv_rows(out / "check.csv")
    assert "=cmd|' calc'!A0/-dup.png" in {v for r in check_rows for v in r.values()}, check_rows

    # --keep reads the escaped manifest back: what it selected is selected again
    kept = kept_paths(out / "manifest.csv")
    again = tmp_path / "again"
    code, text = run("select", root, again, "--embeddings", vectors, "--cache", cache,
                     "--per-class", "6", "--keep", out / "manifest.csv", "--no-report", *SELECT)
    assert code == 0, text
    selected = read_manifest(again / "manifest.csv").selected()
    assert all(paths <= selected[group] for group, paths in kept.items())

    checked = tmp_path / "checked"
    code, text = run("check", root, checked, "--embeddings", vectors, "--cache", cache, "-q")
    assert code == 0, text
    for name in ("check.csv", "outliers.csv"):
        assert_no_formula(checked / name)


SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
                    min_size=0, max_size=12)
FILE_NAME = st.one_of(
    SAFE_TEXT.map(lambda s: os.fsencode(s)),
    st.binary(max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b),
    st.sampled_from([n.removesuffix(".png") for n in DANGEROUS]).map(os.fsencode),
).map(lambda b: os.fsdecode(b + b".png")).filter(lambda n: len(os.fsencode(n)) <= 255)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pictures")
    return [make_image(folder / f"{i}.png", seed=i) for i in range(6)]


@given(names=st.lists(FILE_NAME, min_size=2, max_size=6, unique=True),
       group=st.sampled_from(["=g", "@g", "-g", "+g", "g", "\tg"]))
@example(names=["=1+2.png", "@SUM(A1).png"], group="=g")
@SLOW
def test_any_file_name_comes_back_from_the_manifest_as_it_was(
        pictures: list[Path], tmp_path_factory: pytest.TempPathFactory, names: list[str],
        group: str) -> None:
    work = tmp_path_factory.mktemp("names")
    root = work / "data"
    (root / group).mkdir(parents=True)
    for i, name in enumerate(names):
        (root / name).write_bytes(pictures[i].read_bytes())
        (root / group / name).write_bytes(pictures[i].read_bytes())
    vectors = vectors_by_hash(root, work / "v.npz")
    out = work / "out"
    code, text = run("select", root, out, "--embeddings", vectors, "--cache", work / "c.sqlite",
                     "--per-class", "2", "--no-report", *SELECT)
    assert code == 0, text
    assert_no_formula(out / "manifest.csv")
    rows = read_run(out).manifest.rows
    assert sorted(r.path for r in rows) == sorted([*names, *(f"{group}/{n}" for n in names)])
    code, text = run("verify", out)
    assert code == 0, text


@given(rows=st.lists(st.lists(st.text(max_size=8), min_size=3, max_size=3), max_size=6))
@settings(max_examples=300, deadline=None)
def test_csv_cells_round_trip_and_never_start_a_formula(
        tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]) -> None:
    from repsample.output.files import read_csv_rows, write_csv

    path = tmp_path_factory.mktemp("csv") / "t.csv"
    fields = ("path", "group", "note")
    write_csv(path, fields, [dict(zip(fields, r, strict=True)) for r in rows])
    assert read_csv_rows(path) == [dict(zip(fields, r, strict=True)) for r in rows]
    assert_no_formula(path)


# -- 13: options that would be ignored ----------------------------------------------------------


def test_options_that_would_be_ignored_are_refused(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 4})
    vectors = vectors_by_hash(root, tmp_path / "v.npz")
    out = tmp_path / "out"
    code, text = run("select", root, out, "--missing-vectors", "embed", *SELECT)
    one_line_error(code, text, "--missing-vectors", "--embeddings")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not read: refused before")
    for model in (f"onnx:{onnx}", "resnet18"):
        code, text = run("select", root, out, "--embeddings", vectors, "--model", model, *SELECT)
        one_line_error(code, text, "--model", "--embeddings", "--missing-vectors embed")
    assert not out.exists()


# -- 19: line ends ------------------------------------------------------------------------------


def test_csv_files_end_lines_with_lf_and_old_crlf_manifests_still_read(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 6, "b": 5})
    make_image(root / "a" / "copy.jpg", seed=0)  # the same picture as a/img_000.jpg: check.csv
    vectors = vectors_by_hash(root, tmp_path / "v.npz")
    out = tmp_path / "out"
    code, text = run("select", root, out, "--embeddings", vectors, "--cache", tmp_path / "c.sqlite",
                     "--per-class", "3", "--no-report", *SELECT)
    assert code == 0, text
    for name in ("manifest.csv", "check.csv"):
        data = (out / name).read_bytes()
        assert b"\r" not in data and data.count(b"\n") >= 2, name
    assert re.search(rb"^a/img_00\d\.jpg,a,selected,", (out / "manifest.csv").read_bytes(), re.M)
    before = read_manifest(out / "manifest.csv").rows
    crlf = tmp_path / "old" / "manifest.csv"
    crlf.parent.mkdir()
    crlf.write_bytes((out / "manifest.csv").read_bytes().replace(b"\n", b"\r\n"))
    assert read_manifest(crlf).rows == before
    assert kept_paths(crlf) == kept_paths(out / "manifest.csv")


def test_the_csv_escape_is_exactly_reversible() -> None:
    from repsample.output.files import escape_cell, unescape_cell

    for value in ["", "-", "'", "''", "=", "'=", "''=", "-0.5", "-1e5", "-inf", "a=b", "@", "'a",
                  *DANGEROUS, *string.printable]:
        assert unescape_cell(escape_cell(value)) == value, value
        assert not escape_cell(value).startswith(FORMULA_START) or NUMBER.fullmatch(value)


@pytest.mark.parametrize(("flag", "value"), [("--weights", "random"), ("--precision", "int8")])
def test_embedding_options_unused_with_embeddings_are_refused(tmp_path: Path, flag: str, value: str) -> None:
    """Like --model: an option that only embedding reads is ignored by --embeddings alone."""
    root = tmp_path / "data"
    for i in range(3):
        make_image(root / "g" / f"img_{i}.png", seed=i)
    vectors = tmp_path / "vectors.npz"
    np.savez(vectors, paths=np.array([f"g/img_{i}.png" for i in range(3)]),
             embeddings=np.eye(3, 4, dtype=np.float32))
    result = CliRunner().invoke(cli, ["select", str(root), str(tmp_path / "out"), "--embeddings",
                                      str(vectors), flag, value, "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert flag in result.output and "--missing-vectors embed" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.sqlite").exists()
