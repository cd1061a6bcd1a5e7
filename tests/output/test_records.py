"""records: OUTPUT's manifest.csv and run.json read strictly. A missing, empty, partial, foreign or
edited OUTPUT is one line, exit 2, from `repsample evaluate` and `repsample report` alike; --keep
with anything but a repsample manifest is one line, exit 2."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, make_image
from repsample.cli import cli
from repsample.errors import RepsampleError
from repsample.output.layout import MANIFEST_FIELDS
from repsample.output.records import kept_paths, read_manifest, read_run

FAST = [*FAST_ARGS, "--backend", "torch", "-q"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real select run, copied by each test before it tampers with it."""
    base = tmp_path_factory.mktemp("records")
    for i in range(8):
        make_image(base / "data" / "train" / "cats" / f"c{i}.jpg", seed=i)
    for i in range(6):
        make_image(base / "data" / "train" / "dogs" / f"d{i}.jpg", seed=50 + i)
    code, text = run("select", str(base / "data"), str(base / "out"), "--per-class", "3",
                     "--k-min", "2", "--k-max", "3", "--cache", str(base / "cache.sqlite"),
                     "--no-report", *FAST)
    assert code == 0, text
    return base / "out"


@pytest.fixture
def out(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(finished, copy)
    return copy


def rows_of(out: Path) -> list[list[str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.reader(fh))


def write_rows(out: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (out / "manifest.csv").write_text(buf.getvalue())


def edit_cell(column: str, value: str, row: int = 1) -> Callable[[Path], None]:
    def edit(out: Path) -> None:
        rows = rows_of(out)
        rows[row][rows[0].index(column)] = value
        write_rows(out, rows)
    return edit


def edit_record(change: Callable[[dict], None]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def edit(out: Path) -> None:
        record = json.loads((out / "run.json").read_text())
        change(record)
        (out / "run.json").write_text(json.dumps(record))
    return edit


def write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda out: (out / name).write_bytes(data)


def one_line_exit_2(args: list[str], *needles: str) -> None:
    code, text = run(*args)
    assert code == 2, text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)


RANDOM = bytes(range(256)) * 8 + b"\xff\xfe\x00garbage"

TAMPERED: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "manifest empty": (write("manifest.csv", b""), ("manifest.csv is empty", "--overwrite")),
    "manifest random bytes": (write("manifest.csv", RANDOM), ("manifest.csv", "not a valid")),
    "manifest foreign csv": (write("manifest.csv", b"name,label\na.jpg,cat\n"),
                             ("line 1: the header is 'name,label'",)),
    "status": (edit_cell("status", "maybe"), ("line 2: status 'maybe' is not one of",)),
    "cluster": (edit_cell("cluster", "abc"), ("line 2: cluster 'abc' is not an integer",)),
    "distance": (edit_cell("distance", "far"), ("line 2: distance 'far'",)),
    "rank": (edit_cell("rank", "-1"), ("line 2: rank '-1'",)),
    "hash": (edit_cell("hash", "feed"), ("line 2: hash 'feed' is not 64 hexadecimal digits",)),
    "group outside": (edit_cell("group", "../victim"), ("line 2: group '../victim'",)),
    "absolute path": (edit_cell("path", "/etc/passwd"), ("line 2: path '/etc/passwd' is absolute",)),
    "path outside its group": (edit_cell("path", "train/dogs/c0.jpg"),
                               ("line 2: path 'train/dogs/c0.jpg' is not in group 'train/cats'",)),
    "run.json not json": (write("run.json", b"{not json"), ("run.json is not JSON (line 1",)),
    "run.json random bytes": (write("run.json", RANDOM), ("run.json is not UTF-8",)),
    "run.json a list": (write("run.json", b"[1, 2]"), ("not a run record",)),
    "run.json empty": (write("run.json", b"  \n"), ("run.json is empty",)),
    "run.json no cache key": (edit_record(lambda r: r["model"].pop("cache_key")),
                              ("model.cache_key is missing",)),
    "run.json bad k": (edit_record(lambda r: r["groups"]["train/cats"].update(k="five")),
                       ("groups['train/cats'].k is 'five', not an integer",)),
    "partial: no run.json": (lambda out: (out / "run.json").unlink(),
                             ("holds manifest.csv but no run.json: a partial",)),
    "partial: no manifest": (lambda out: (out / "manifest.csv").unlink(),
                             ("holds run.json but no manifest.csv",)),
    "not a run at all": (lambda out: [(out / n).unlink() for n in ("run.json", "manifest.csv")],
                         ("holds no repsample run",)),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_evaluate_and_report_on_a_tampered_output_are_one_line(out: Path, case: str) -> None:
    tamper, needles = TAMPERED[case]
    tamper(out)
    for command in ("evaluate", "report"):
        one_line_exit_2([command, str(out)], str(out), *needles)
    assert not (out / "evaluation.json").exists()


def test_rows_that_do_not_add_up_to_the_run_record(out: Path) -> None:
    rows = rows_of(out)
    dropped = next(r for r in rows[1:] if r[2] == "not_selected")
    write_rows(out, [r for r in rows if r is not dropped])
    with pytest.raises(RepsampleError, match=r"lists 7 images, 3 selected, in group 'train/cats'; "
                                             r"run.json says 8 and 3: they are not of one run"):
        read_run(out)
    rows[1:] = [r for r in rows[1:] if r[1] != "train/dogs"]  # a group run.json does not list
    rows.append(["else/x.jpg", "else", "error", "", "", "", "", "broken",
                 *[""] * (len(MANIFEST_FIELDS) - 8)])
    write_rows(out, rows)
    with pytest.raises(RepsampleError, match=r"lists group 'else', which run\.json does not"):
        read_run(out)


def test_a_path_listed_twice_and_a_short_row(out: Path) -> None:
    rows = rows_of(out)
    write_rows(out, [*rows, rows[1]])
    with pytest.raises(RepsampleError, match=rf"line {len(rows) + 1}: path .* is listed twice "
                                             r"\(first on line 2\)"):
        read_manifest(out / "manifest.csv")
    write_rows(out, [rows[0], rows[1][:4]])
    with pytest.raises(RepsampleError,
                       match=f"line 2: 4 cells, a manifest row has {len(MANIFEST_FIELDS)}"):
        read_manifest(out / "manifest.csv")


def test_a_good_output_reads_typed(out: Path) -> None:
    done = read_run(out)
    rows = done.manifest.rows
    assert len(rows) == 14 and {r.group for r in rows} == {"train/cats", "train/dogs"}
    assert sum(r.status == "selected" for r in rows) == 6
    assert all(isinstance(r.cluster, int) for r in rows if r.status == "selected")
    assert done.record.groups["train/cats"].images == 8 and done.record.cache_key
    assert done.selection_id["run_started"] == json.loads((out / "run.json").read_text())["started"]
    assert kept_paths(out / "manifest.csv") == done.manifest.selected()


@pytest.mark.parametrize(("content", "needle"), [
    (b"just some notes\nabout cats\n", "line 1: the header is 'just some notes'"),
    (b"path,label\ntrain/cats/c0.jpg,cat\n", "line 1: the header is 'path,label'"),
    (RANDOM, "--keep"),
    (b"", "the file is empty"),
])
def test_keep_with_anything_but_a_manifest_is_one_line(out: Path, tmp_path: Path, content: bytes,
                                                       needle: str) -> None:
    keep = tmp_path / "keep.csv"
    keep.write_bytes(content)
    data = tmp_path / "data"
    make_image(data / "g" / "a.jpg", seed=1)
    one_line_exit_2(["select", str(data), str(tmp_path / "new"), "--keep", str(keep), *FAST],
                    f"--keep {keep} is not a repsample manifest.csv (", needle)
    assert not (tmp_path / "new").exists()
