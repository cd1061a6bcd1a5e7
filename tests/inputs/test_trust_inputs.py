"""Inputs a hostile user can give (issue 22, items 5-8, 13 and 19): stamps SQLite cannot hold,
listing rows whose file names collide, folders reached through symlinks, FIFOs and devices named
as images, labels and paths that are not text; and selection.parquet's numbers."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import FAST_ARGS, FAST_MODEL, make_image
from repsample import fsio
from repsample.cache import ContentCache, FileStat
from repsample.cli import cli
from repsample.embedding.decode import DecodeError, decode_image
from repsample.errors import UsageError
from repsample.inputs import listing, rowbytes
from repsample.inputs.folder import scan
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.pipeline import select

RUN = {**FAST_MODEL, "per_class": 4, "k_min": 2, "k_max": 3, "report": False}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def invoke(*args: str) -> tuple[int, str]:
    """The command line in this process (the model stays loaded between tests)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def repsample(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The command line in its own process, where a hang fails the test at the timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "repsample", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def manifest_rows(out: Path) -> list[dict[str, str]]:
    return read_manifest(out / "manifest.csv")


# -- 5: stamps SQLite can hold ---------------------------------------------------------------------

def old_stamp(fingerprint: str) -> int:
    """What f12a9c1 made of a dataset's fingerprint: 64 bits, at or above 2**63 half the time."""
    return int(hashlib.sha256(fingerprint.encode()).hexdigest()[:16], 16)


def saved_dataset_past_2_63(folder: Path, images: list[Path]) -> Path:
    """A saved dataset whose fingerprint, as f12a9c1 read it, is a stamp of 2**63 or more: its
    state.json is given fingerprints until the one `datasets` then reports is such a one."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat"])})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": p.read_bytes(), "path": None} for p in images],
                                     "label": [0] * len(images)}, features=features)
    ds.save_to_disk(str(folder))
    state_file = folder / "state.json"
    state = json.loads(state_file.read_text())
    for attempt in range(200):
        state["_fingerprint"] = f"{attempt:016x}"
        state_file.write_text(json.dumps(state))
        if old_stamp(datasets.load_from_disk(str(folder))._fingerprint) >= 2**63:
            return folder
    raise AssertionError("no fingerprint past 2**63 in 200 tries")


def test_a_dataset_whose_fingerprint_is_past_2_63_selects(tmp_path: Path, cache_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    images = [make_image(tmp_path / "img" / f"{i}.png", seed=i) for i in range(5)]
    saved = saved_dataset_past_2_63(tmp_path / "saved", images)
    code, out = invoke("select", f"hf://{saved}", str(tmp_path / "out"), "--mode", "none",
                       "--cache", str(cache_path), "--no-report", *FAST_ARGS)
    assert code == 0, out
    assert sum(r["status"] == "selected" for r in manifest_rows(tmp_path / "out")) == 5


@PROPERTY
@given(st.lists(st.text(), min_size=1, max_size=4)
       | st.lists(st.text("0123456789abcdef", min_size=1, max_size=64), min_size=1, max_size=4))
def test_any_stamp_is_an_integer_sqlite_stores(parts: list[str]) -> None:
    stamp = rowbytes.stamp(*parts)
    assert 0 <= stamp < 2**62 and stamp == rowbytes.stamp(*parts)
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (v INTEGER)")
        db.execute("INSERT INTO t VALUES (?)", (stamp,))
        assert db.execute("SELECT v FROM t").fetchone()[0] == stamp


WORD = st.integers(-(2**63), 2**64 - 1)  # whatever a stat or a store may report, signed or not


@PROPERTY
@given(size=WORD, mtime=WORD, ino=WORD, ctime=st.integers(-(2**63), 10**18))
@example(size=1, mtime=13_569_465_600 * 10**9, ino=2**64 - 1, ctime=0)  # 2400-01-01; the largest inode
def test_the_hash_cache_keeps_any_stat(tmp_path_factory: pytest.TempPathFactory, size: int, mtime: int,
                                       ino: int, ctime: int) -> None:
    """An mtime set past the year 2262 (touch -d 2400-01-01) or an inode past 2**63 is still
    remembered and found again (f12a9c1: OverflowError, exit 1 "internal error")."""
    folder = tmp_path_factory.mktemp("cache")
    cache = ContentCache(folder / "c.sqlite")
    try:
        stat = FileStat("/x/a.png", size, mtime, ino, ctime)
        cache.remember_hashes([(stat, "ab" * 32)], time.time_ns())
        assert cache.known_hashes([stat]) == {"/x/a.png": "ab" * 32}
        assert cache.known_hashes([stat._replace(mtime_ns=mtime + 1)]) == {}
    finally:
        cache.close()


def test_a_folder_with_a_file_dated_2400_selects_twice(tmp_path: Path, cache_path: Path) -> None:
    for i in range(3):
        make_image(tmp_path / "data" / "cats" / f"{i}.png", seed=i)
    far = 13_569_465_600  # 2400-01-01: its mtime in nanoseconds is past 2**63
    os.utime(tmp_path / "data" / "cats" / "0.png", (far, far))
    for _ in range(2):  # the second run reads the stored stat back
        code, out = invoke("select", str(tmp_path / "data"), str(tmp_path / "out"), "--mode", "none",
                           "--overwrite", "--cache", str(cache_path), "--no-report", *FAST_ARGS)
        assert code == 0, out


# -- 6 and 13: listing rows ------------------------------------------------------------------------

def listing_table(rows: list[dict[str, Any]], where: str = "l.jsonl") -> listing.Table:
    names = tuple(dict.fromkeys(k for r in rows for k in r))
    return listing._records_table(rows, names, where)


def scan_rows(rows: list[dict[str, Any]], root: Path) -> listing.Scanned:
    table = listing_table(rows)
    return listing.scan_tables([table], [listing.choose_columns(table, listing.Columns())],
                               listing.Where(root))


def test_the_issues_colliding_names_export_three_files(tmp_path: Path, cache_path: Path) -> None:
    data = tmp_path / "data"
    paths = ["sub1/a.png", "sub2/a.png", "sub3/0-a.png"]
    for i, rel in enumerate(paths):
        make_image(data / rel, seed=i)
    listed = write_csv(data / "l.csv", ["path", "label"], [[p, "bag"] for p in paths])
    code, out = invoke("select", str(listed), str(tmp_path / "out"), "--cache", str(cache_path),
                       "--no-report", *FAST_ARGS)
    assert code == 0, out
    rows = manifest_rows(tmp_path / "out")
    assert len({r["path"] for r in rows}) == 3
    exported = sorted(f"bag/{p.name}" for p in (tmp_path / "out" / "bag").iterdir())
    assert exported == sorted(r["path"] for r in rows)
    sources = {hashlib.sha256((data / p).read_bytes()).hexdigest() for p in paths}
    assert {hashlib.sha256((tmp_path / "out" / e).read_bytes()).hexdigest() for e in exported} == sources
    assert invoke("verify", str(tmp_path / "out"))[0] == 0


BASENAMES = st.sampled_from(["a.png", "0-a.png", "1-a.png", "0-0-a.png", "1-0-a.png", "2-a.png", "b.png"])
LISTED = st.lists(st.tuples(st.sampled_from(["s0", "s1", "s2", "s3/d"]), BASENAMES, st.sampled_from("xy")),
                  min_size=1, max_size=14, unique_by=lambda r: (r[0], r[1]))


@PROPERTY
@given(LISTED)
def test_names_within_a_group_are_unique_and_stable(listed: list[tuple[str, str, str]]) -> None:
    rows = [{"path": f"{d}/{name}", "label": label} for d, name, label in listed]
    root = Path(tempfile.gettempdir()) / "repsample-no-such-folder"  # missing files: error rows
    first = scan_rows(rows, root)
    rels = [f.rel for g in first.groups for f in g.files]
    assert len(rels) == len(set(rels)) == len(rows)
    assert rels == [f.rel for g in scan_rows(rows, root).groups for f in g.files]  # stable
    by_row = {row: rel for rel, (_, row) in first.origin.items()}
    for i, (_, name, label) in enumerate(listed):
        if sum(1 for _, n, lab in listed if (n, lab) == (name, label)) == 1:
            assert by_row[i] == f"{label}/{name}"  # a name of its own is kept
        else:
            assert by_row[i].startswith(f"{label}/{i}-") and by_row[i].endswith(f"-{name}")


@PROPERTY
@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans(),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.lists(st.integers(), max_size=2)))
def test_a_label_is_a_folder_name_or_one_line(label: Any) -> None:
    root = Path(tempfile.gettempdir()) / "repsample-no-such-folder"
    try:
        scanned = scan_rows([{"path": "a.png", "label": "x"}, {"path": "b.png", "label": label}], root)
    except UsageError as exc:
        assert "\n" not in str(exc) and "row 1" in str(exc)
        return
    assert isinstance(label, str | int | float)
    group = next(g for g in scanned.groups if any(f.rel.endswith("/b.png") for f in g.files))
    assert group.name == str(label).strip() and group.name not in ("", ".", "..")
    assert "/" not in group.name and "\\" not in group.name and "\x00" not in group.name


@pytest.mark.parametrize(
    ("record", "needles"),
    [
        ({"path": "a.jpg", "label": {"a": 1}}, ["row 0", "column 'label'", "an object"]),
        ({"path": "a.jpg", "label": ["x"]}, ["row 0", "column 'label'", "a list"]),
        ({"path": "a.jpg", "label": "x", "split": {"s": 1}}, ["row 0", "column 'split'", "an object"]),
        ({"path": ["a.jpg"], "label": "x"}, ["row 0", "column 'path'", "a list", "not a path"]),
        ({"path": 7, "label": "x"}, ["row 0", "column 'path'", "not a path"]),
    ],
)
def test_a_jsonl_cell_that_is_not_text_is_refused(tmp_path: Path, record: dict[str, Any],
                                                   needles: list[str]) -> None:
    data = tmp_path / "data"
    make_image(data / "a.jpg", seed=1)
    good = {"path": "a.jpg", "label": "x"} if "split" not in record else {"path": "a.jpg", "label": "x",
                                                                          "split": "s"}
    (data / "l.jsonl").write_text(json.dumps({**good, "path": "b.jpg"}) + "\n" + json.dumps(record) + "\n")
    result = CliRunner().invoke(cli, ["select", str(data / "l.jsonl"), str(tmp_path / "out"), *FAST_ARGS],
                                catch_exceptions=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in [n.replace("row 0", "row 1") for n in needles]:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "out").exists()


# -- 7: folders reached through symlinks -----------------------------------------------------------

def animals(root: Path) -> Path:
    for group in ("cats", "dogs"):
        for i in range(3):
            make_image(root / group / f"{i}.png", seed=i + (10 if group == "dogs" else 0))
    return root


@pytest.mark.parametrize(("link", "target"), [("cats/alias", "../dogs"), ("all_cats", "cats")])
def test_a_linked_folder_is_one_group_under_its_real_path(tmp_path: Path, link: str, target: str) -> None:
    root = animals(tmp_path / "data")
    (root / link).symlink_to(target)
    groups = scan(root)
    assert [g.name for g in groups] == ["cats", "dogs"]
    for g in groups:
        assert [f.rel for f in g.files] == [f"{g.name}/{i}.png" for i in range(3)]
        assert all(f.path == root / f.rel for f in g.files)  # read by the link-free path


def test_select_names_a_linked_folder_by_its_real_path(tmp_path: Path, cache_path: Path) -> None:
    root = animals(tmp_path / "data")
    (root / "cats" / "alias").symlink_to("../dogs")
    code, out = invoke("select", str(root), str(tmp_path / "out"), "--cache", str(cache_path),
                       "--no-report", *FAST_ARGS)
    assert code == 0, out
    assert sorted({r["group"] for r in manifest_rows(tmp_path / "out")}) == ["cats", "dogs"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name[0] != ".") == [
        "cats", "dogs"]


FOLDER = st.text("abcdz_", min_size=1, max_size=4)


@settings(max_examples=25, deadline=None)
@given(real=st.lists(FOLDER, min_size=1, max_size=3, unique=True),
       links=st.lists(st.tuples(FOLDER, st.integers(0, 2), st.booleans()), max_size=3))
def test_groups_are_the_real_folders_whatever_the_links_are_called(
        real: list[str], links: list[tuple[str, int, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, name in enumerate(real):
            (root / name).mkdir()
            (root / name / "x.png").write_bytes(b"%d" % i)
        made = set(real)
        for name, target, nested in links:
            at = (root / real[0] / name) if nested else (root / name)
            if at.name in made or (nested and name in os.listdir(root / real[0])):
                continue
            made.add(name)
            at.symlink_to(Path("..") / real[target % len(real)] if nested else real[target % len(real)])
        groups = scan(root)
        assert [g.name for g in groups] == sorted(real)
        assert [f.rel for g in groups for f in g.files] == [f"{n}/x.png" for n in sorted(real)]


# -- 8: only regular files are read ----------------------------------------------------------------

def test_fifos_devices_and_huge_files_listed_are_error_rows(tmp_path: Path, cache_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(3):
        make_image(data / f"{i}.png", seed=i)
    os.mkfifo(data / "pipe.png")
    with open(data / "huge.png", "wb") as fh:  # sparse: no disk used
        fh.truncate(2 * 2**30 + 1)  # past fsio.MAX_FILE_BYTES
    listed = write_csv(data / "l.csv", ["path", "label"],
                       [[f"{i}.png", "a"] for i in range(3)] + [["pipe.png", "a"], ["/dev/zero", "a"],
                                                                 ["huge.png", "a"]])
    done = repsample("select", str(listed), str(tmp_path / "out"), "--mode", "none", "--cache",
                     str(cache_path), "--no-report", *FAST_ARGS, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = {r["path"]: r["error"] for r in manifest_rows(tmp_path / "out") if r["status"] == "error"}
    assert "FIFO" in errors["a/pipe.png"] and "character device" in errors["a/zero"]
    assert "not a regular file" in errors["a/pipe.png"] and "larger than 2 GiB" in errors["a/huge.png"]
    done = repsample("check", str(listed), str(tmp_path / "check"), "--cache", str(cache_path),
                     *FAST_ARGS, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    check = (tmp_path / "check" / "check.csv").read_text()
    assert "a/pipe.png" in check and "a/zero" in check and "a/huge.png" in check


def test_a_fifo_in_the_folder_is_skipped_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = animals(tmp_path / "data")
    os.mkfifo(root / "cats" / "pipe.png")
    with caplog.at_level(logging.WARNING, logger="repsample.inputs.folder"):
        groups = scan(root)
    assert [f.rel for f in groups[0].files] == ["cats/0.png", "cats/1.png", "cats/2.png"]
    assert "not regular files" in caplog.text and "pipe.png" in caplog.text


def finishes(work: Any) -> Any:
    """work() run in a thread that must end within 20 s (a FIFO read would block it for ever)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "blocked"
    return out[0]


def test_readers_refuse_what_is_not_a_regular_file_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")

    def attempt(read: Any, path: Path | str) -> str:
        try:
            read(path)
        except (OSError, DecodeError) as exc:
            return str(exc)
        return "read"

    for path in (tmp_path / "pipe.png", "/dev/zero", tmp_path):
        assert "not a regular file" in finishes(lambda p=path: attempt(fsio.read_bytes, p))
        assert "not a regular file" in finishes(lambda p=path: attempt(fsio.open_binary, p))
        assert "not a regular file" in finishes(lambda p=path: attempt(decode_image, p))


def test_a_file_growing_past_the_cap_stops_the_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fsio, "MAX_FILE_BYTES", 10)
    path = tmp_path / "grows.png"
    path.write_bytes(b"12345")
    with fsio.open_binary(path) as fh:
        path.write_bytes(b"x" * 100)  # grows after the size was checked at open
        with pytest.raises(OSError, match="larger than"):
            fh.read()
    with pytest.raises(OSError, match="larger than"):
        fsio.read_bytes(path)


# -- 19: selection.parquet's numbers ---------------------------------------------------------------

def test_selection_parquet_and_jsonl_hold_numbers(tmp_path: Path, cache_path: Path) -> None:
    data = tmp_path / "data"
    paths = [make_image(data / f"{i}.png", seed=i).name for i in range(8)]
    pq.write_table(pa.table({"path": paths, "label": ["a"] * 8}), data / "l.parquet")
    (data / "l.jsonl").write_text("".join(json.dumps({"path": p, "label": "a"}) + "\n" for p in paths))
    for name in ("l.parquet", "l.jsonl"):
        out = tmp_path / f"out-{name}"
        result = select(data / name, out, cache=cache_path, mode="none", **RUN)
        manifest = {r["path"]: r for r in read_manifest(result.manifest_path)}
        if name == "l.parquet":
            table = pq.read_table(out / "selection.parquet")
            assert table.schema.field("cluster").type == pa.int64()
            assert table.schema.field("rank").type == pa.int64()
            for field in ("distance", "typicality", "outlier_score", "uniqueness"):
                assert table.schema.field(field).type == pa.float64(), field
            written = table.to_pylist()
        else:
            written = [json.loads(line) for line in (out / "selection.jsonl").read_text().splitlines()]
        assert len(written) == 4
        for row in written:
            expected = manifest[row["repsample_path"]]
            assert isinstance(row["cluster"], int) and isinstance(row["distance"], float)
            assert row["cluster"] == int(expected["cluster"]) and row["rank"] == int(expected["rank"])
            assert row["distance"] == pytest.approx(float(expected["distance"]))
            assert row["hash"] == expected["hash"] and isinstance(row["hash"], str)
