"""The embedding cache and the run record at the edges of trust (issue 22, items 1, 2, 13, 14, 15).

Only a file proven to be repsample's cache (SQLite's header with repsample's application_id, a
cache made before it with repsample's tables, or an empty file) is ever written, repaired or set
aside; any other file named by --cache is refused and left byte for byte as it was, and so is a
cache inside INPUT. A cache path read from run.json is opened read-only (SQLite mode=ro). run.json
is read strictly: a value of the wrong type is one line naming the file and the field, exit 2.
Through real processes and real files; hypothesis varies the bytes, the names and the values.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FAST_ARGS, TreeFactory, make_image
from repsample import cache as cache_module
from repsample.cache import ContentCache
from repsample.cli import cli
from repsample.errors import EnvironmentProblem, RepsampleError
from synthetic_run import write_run

FAST = [*FAST_ARGS, "--backend", "torch", "--no-report", "-q"]
FAST_CHECK = [*FAST_ARGS, "--backend", "torch", "-q"]  # check writes no report
SQLITE_MAGIC = b"SQLite format 3\x00"


def repsample(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """A real `python -m repsample` process: its exit code and everything it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "repsample", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)
    return done.returncode, done.stdout + done.stderr


def one_line(code: int, text: str, expected: int, *needles: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert code == expected and len(lines) == 1, (code, text)
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def asides(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- item 1: --cache naming a file that is not a repsample cache, or a place inside INPUT -----


def listing_of(root: Path) -> Path:
    """root/list.csv naming every image under root with its folder as label."""
    listing = root / "list.csv"
    rows = [(p.relative_to(root).as_posix(), p.parent.name) for p in sorted(root.rglob("*.jpg"))]
    with open(listing, "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    return listing


def test_cache_naming_the_listing_input_is_refused_and_left_as_it_is(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3, "b": 3})
    listing = listing_of(root)
    before = snapshot(root)
    code, text = repsample("select", str(listing), str(tmp_path / "out"), "--cache", str(listing),
                           *FAST)
    one_line(code, text, 2, "--cache", str(listing), "not an SQLite database")
    assert snapshot(root) == before and not asides(listing)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["select", "check"])
def test_cache_naming_an_image_inside_input_is_refused_and_left_as_it_is(
        command: str, make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3, "b": 3})
    image = root / "a" / "img_000.jpg"
    before = snapshot(root)
    code, text = repsample(command, str(root), str(tmp_path / "out"), "--cache", str(image),
                           *(FAST if command == "select" else FAST_CHECK))
    one_line(code, text, 2, "--cache", str(image))
    assert snapshot(root) == before and not asides(image)


@pytest.mark.parametrize("command", ["select", "check"])
def test_a_new_cache_inside_input_is_refused_before_anything_is_written(
        command: str, make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3, "b": 3})
    before = snapshot(root)
    cache = root / "a" / "cache.sqlite"
    code, text = repsample(command, str(root), str(tmp_path / "out"), "--cache", str(cache),
                           *(FAST if command == "select" else FAST_CHECK))
    one_line(code, text, 2, "--cache", "inside INPUT")
    assert snapshot(root) == before  # no cache, -wal or -shm file made in INPUT
    assert not (tmp_path / "out").exists()


def test_another_programs_sqlite_database_is_refused_and_left_as_it_is(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3})
    theirs = tmp_path / "notes.sqlite"
    with sqlite3.connect(theirs) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    db.close()
    before = theirs.read_bytes()
    code, text = repsample("select", str(root), str(tmp_path / "out"), "--cache", str(theirs), *FAST)
    one_line(code, text, 2, "--cache", str(theirs), "without repsample's tables")
    assert theirs.read_bytes() == before and not asides(theirs)


def test_empty_cache_is_a_usage_error(make_tree: TreeFactory, tmp_path: Path) -> None:
    """--cache '' (the command line makes it '.'): a user's mistake, exit 2, not the machine's."""
    root = make_tree({"a": 3})
    code, text = repsample("select", str(root), str(tmp_path / "out"), "--cache", "", *FAST)
    one_line(code, text, 2, "--cache must name a database file")
    assert not (tmp_path / "out").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=5000).filter(lambda b: not b.startswith(b"SQLite")))
def test_any_file_that_is_not_sqlite_is_refused_and_kept_byte_for_byte(
        tmp_path: Path, content: bytes) -> None:
    """Replaces tests/test_cache_damage.py's promise that such a file is set aside: a file with
    no SQLite header cannot be told from a user's own (a listing, an image), so it is never
    renamed; the line says to move it away if it was a damaged cache."""
    path = tmp_path / "c.sqlite"
    path.write_bytes(content)
    for read_only in (False, True):
        with pytest.raises(RepsampleError, match=r"not an SQLite database.*move it away"):
            ContentCache(path, read_only=read_only)
    assert path.read_bytes() == content and not asides(path)
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_a_cache_with_its_marker_but_damaged_pages_is_still_set_aside(tmp_path: Path) -> None:
    """Real damage to a file that proves to be repsample's: set aside, a fresh cache made."""
    path = tmp_path / "c.sqlite"
    with ContentCache(path) as cache:
        cache.put_many("m", vectors=[(f"h{i}", np.full(1280, i, np.float32)) for i in range(50)])
    data = bytearray(path.read_bytes())
    assert int.from_bytes(data[68:72], "big") == cache_module.APPLICATION_ID
    data[4096:] = np.random.default_rng(0).bytes(len(data) - 4096)
    path.write_bytes(bytes(data))
    got: dict[str, Any] | str
    try:
        with ContentCache(path) as cache:
            got = {h: e.vector for h, e in cache.get_many(["h1", "h2"], "m").items()}
    except EnvironmentProblem as exc:
        got = str(exc)
    assert asides(path), got  # noticed and set aside, whether at open or at the read


def test_an_empty_file_becomes_a_cache(tmp_path: Path) -> None:
    """An empty file holds nothing to lose (a run killed as SQLite created the file leaves one)."""
    path = tmp_path / "c.sqlite"
    path.touch()
    with ContentCache(path) as cache:
        cache.put_many("m", vectors=[("h", np.ones(4, np.float32))])
    assert path.read_bytes()[:16] == SQLITE_MAGIC
    assert int.from_bytes(path.read_bytes()[68:72], "big") == cache_module.APPLICATION_ID


NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\0"),
               min_size=1, max_size=40).filter(lambda n: n not in (".", ".."))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAME)
def test_a_cache_of_any_name_is_written_then_read_read_only(tmp_path: Path, name: str) -> None:
    """mode=ro goes through an SQLite URI: '?', '#', '%' and any other character in the name
    must reach the same file."""
    folder = tmp_path / "any"
    folder.mkdir(exist_ok=True)
    path = folder / name
    for old in folder.iterdir():
        old.unlink()
    vector = np.arange(8, dtype=np.float32)
    with ContentCache(path) as cache:
        cache.put_many("m", vectors=[("h", vector)])
    with ContentCache(path, read_only=True) as cache:
        np.testing.assert_array_equal(cache.get_many(["h"], "m")["h"].vector, vector)
    made = {p.name for p in folder.iterdir()}
    assert made <= {name, f"{name}-wal", f"{name}-shm"}, made


# -- item 2: a cache path read from run.json is opened read-only --------------------------------


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A finished run's OUTPUT (tests/synthetic_run.py): 2 groups of 12, 4 kept each."""
    pictures = [make_image(tmp_path / "pics" / f"p{i}.jpg", seed=i) for i in range(4)]
    return write_run(tmp_path / "run", groups=2, per_group=12, kept=4, pictures=pictures)


def edit_record(out: Path, **parameters: Any) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((out / "run.json").read_text())
    record["parameters"].update(parameters)
    (out / "run.json").write_text(json.dumps(record))
    return record


@pytest.mark.parametrize("command", [["report", "--projection", "pca", "-q"],
                                     ["evaluate", "--seeds", "1"]])
def test_a_file_named_by_run_json_is_never_set_aside_or_replaced(
        synthetic: Path, tmp_path: Path, command: list[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine, not a cache\n" * 20)
    edit_record(synthetic, cache=str(notes))
    code, text = repsample(command[0], str(synthetic), *command[1:])
    one_line(code, text, 2, str(notes), "not an SQLite database")
    assert notes.read_text() == "mine, not a cache\n" * 20 and not asides(notes)


@pytest.mark.parametrize("command", [["report", "--projection", "pca", "-q"],
                                     ["evaluate", "--seeds", "1"]])
def test_a_damaged_cache_named_by_run_json_is_not_repaired(
        synthetic: Path, command: list[str]) -> None:
    """Pages after the first garbled: select would set it aside; a reader says so and leaves it."""
    cache = Path(json.loads((synthetic / "run.json").read_text())["parameters"]["cache"])
    data = bytearray(cache.read_bytes())
    data[4096:] = np.random.default_rng(1).bytes(len(data) - 4096)
    cache.write_bytes(bytes(data))
    code, text = repsample(command[0], str(synthetic), *command[1:])
    one_line(code, text, 3, str(cache), "damaged")
    assert cache.read_bytes() == bytes(data) and not asides(cache)


def test_an_old_cache_named_by_run_json_is_read_not_upgraded(synthetic: Path, tmp_path: Path) -> None:
    """A schema-1 cache (made before checksums and the application_id) serves the report's map
    and evaluate's vectors; neither writes to it (select would upgrade it)."""
    old = tmp_path / "old.sqlite"
    record = edit_record(synthetic, cache=str(old))
    rows = list(csv.DictReader((synthetic / "manifest.csv").read_text().splitlines()))
    rng = np.random.default_rng(2)
    with sqlite3.connect(old) as db:
        db.executescript("""
            CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL);
            CREATE TABLE embeddings (hash TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER,
                vector BLOB, error TEXT, PRIMARY KEY (hash, model)) WITHOUT ROWID;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');""")
        db.executemany("INSERT INTO embeddings VALUES (?, ?, 16, ?, NULL)",
                       [(r["hash"], record["model"]["cache_key"],
                         rng.normal(size=16).astype(np.float32).tobytes()) for r in rows])
    db.close()
    before = old.read_bytes()
    for command in (["evaluate", "--seeds", "1"], ["report", "--projection", "pca", "-q"]):
        code, text = repsample(command[0], str(synthetic), *command[1:])
        assert code == 0, text
    assert old.read_bytes() == before and not asides(old)
    assert "No map" not in (synthetic / "report.html").read_text()  # the vectors were read


# -- item 14: run.json records --cache as an absolute path ---------------------------------------


def test_a_relative_cache_is_recorded_absolute_and_found_from_another_folder(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 6, "b": 5})
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    code, text = repsample("select", str(root), str(tmp_path / "out"), "--per-class", "3",
                           "--k-min", "2", "--k-max", "3", "--cache", "c.sqlite", *FAST, cwd=work)
    assert code == 0, text
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())["parameters"]["cache"]
    assert recorded == str(work / "c.sqlite")
    code, text = repsample("evaluate", str(tmp_path / "out"), "--seeds", "1", cwd=elsewhere)
    assert code == 0, text
    assert not (elsewhere / "c.sqlite").exists()


# -- item 15: run.json read strictly ------------------------------------------------------------


@pytest.mark.parametrize(("where", "value", "field"), [
    ("parameters", "abc", "parameters.seed"),
    ("top", 7, "input"),
])
@pytest.mark.parametrize("command", [["report", "--projection", "pca", "-q"],
                                     ["evaluate", "--seeds", "1"]])
def test_a_run_json_value_of_the_wrong_type_is_one_line(
        synthetic: Path, command: list[str], where: str, value: Any, field: str) -> None:
    record = json.loads((synthetic / "run.json").read_text())
    (record["parameters"] if where == "parameters" else record)[field.rsplit(".")[-1]] = value
    (synthetic / "run.json").write_text(json.dumps(record))
    code, text = repsample(command[0], str(synthetic), *command[1:])
    one_line(code, text, 2, str(synthetic / "run.json"), field, repr(value) if isinstance(value, str)
             else str(value))


# The values report, evaluate and verify read from run.json, by where they sit.
FIELDS = [("input",), ("output",), ("command",), ("totals",), ("check",), ("started",),
          ("parameters",), ("model",), ("groups",), ("parameters", "seed"), ("parameters", "mode"),
          ("parameters", "cache"), ("parameters", "dedup"), ("model", "cache_key"),
          ("totals", "images"), ("check", "dedup")]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(FIELDS), value=JSON)
def test_any_value_in_run_json_is_read_or_refused_in_one_line(
        synthetic: Path, where: tuple[str, ...], value: Any) -> None:
    original = synthetic.parent / "run.orig.json"  # each example edits the record as written
    if not original.exists():
        original.write_bytes((synthetic / "run.json").read_bytes())
    record = json.loads(original.read_text())
    holder = record if len(where) == 1 else record.setdefault(where[0], {})
    holder[where[-1]] = value
    (synthetic / "run.json").write_text(json.dumps(record))
    for args in (["report", str(synthetic), "--projection", "pca", "-q"],
                 ["evaluate", str(synthetic), "--seeds", "1"], ["verify", str(synthetic)]):
        result = CliRunner().invoke(cli, args)
        assert "internal error" not in result.output and "Traceback" not in result.output, \
            (args, result.output)
        allowed = (0, 1, 2, 3) if args[0] == "verify" else (0, 2, 3)  # verify's 1: it differs
        assert result.exit_code in allowed, (args, result.output, result.exception)
        if result.exit_code in (2, 3):  # verify's 1 lists each difference, a line each
            assert len(result.output.strip().splitlines()) == 1, (args, result.output)
