"""A damaged, full or read-only embedding cache: never a wrong vector, never a traceback.

Caches are damaged for real (random bytes, truncation, garbage over pages in the middle, a
flipped byte inside one vector); the full disk is a real small tmpfs (conftest.small_disk) and the
read-only one that tmpfs remounted read-only (CI runs as root; where mounting is not permitted the
test is skipped with the reason).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, TreeFactory
from repsample.cache import ContentCache
from repsample.cli import cli
from repsample.errors import EnvironmentProblem

MODEL = "test-model"
DIM = 1280  # the default model's width: each vector spans an overflow page, as in real caches
FAST = [*FAST_ARGS, "--backend", "torch", "--no-report", "-q"]


def digests(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def vectors(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)


def filled_cache(path: Path, n: int = 300) -> tuple[list[str], np.ndarray]:
    hashes, X = digests(n), vectors(n)
    with ContentCache(path) as cache:
        for start in range(0, n, 50):
            cache.put_many(MODEL, vectors=list(zip(hashes[start:start + 50], X[start:start + 50],
                                                   strict=True)))
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return hashes, X


def read_back(path: Path, hashes: list[str]) -> dict[str, np.ndarray] | str:
    """Every vector the cache serves, or the one line it stopped with."""
    try:
        with ContentCache(path) as cache:
            entries = cache.get_many(hashes, MODEL)
    except EnvironmentProblem as exc:
        return exc.flag  # as the command line shows it
    return {h: e.vector for h, e in entries.items() if e.vector is not None}


def assert_never_wrong(path: Path, hashes: list[str], X: np.ndarray) -> list[str]:
    """Read until the cache answers; every answer it gives is the stored vector. Returns the
    lines it stopped with on the way."""
    lines = []
    for _ in range(5):
        got = read_back(path, hashes)
        if isinstance(got, str):
            assert "\n" not in got and "--cache" in got and str(path) in got, got
            lines.append(got)
            continue
        for h, vector in got.items():
            np.testing.assert_array_equal(vector, X[hashes.index(h)])
        return lines
    raise AssertionError(f"the cache never recovered: {lines}")


def garble(path: Path, offset: int, size: int, seed: int = 1) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(np.random.default_rng(seed).bytes(size))


def asides(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def test_every_public_method_is_behind_the_boundary() -> None:
    public = [name for name, value in vars(ContentCache).items()
              if callable(value) and not name.startswith("_")]
    assert {"get_many", "put_many", "stored", "known_hashes", "remember_hashes", "close"} <= set(public)
    unguarded = [name for name in public if not hasattr(getattr(ContentCache, name), "__wrapped__")]
    assert unguarded == []


def test_garbage_over_pages_in_the_middle_never_yields_a_wrong_vector(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    hashes, X = filled_cache(path)
    size = path.stat().st_size
    garble(path, (size // 2) // 4096 * 4096, 8 * 4096)
    lines = assert_never_wrong(path, hashes, X)
    assert lines, "the damage went unnoticed"
    assert "set aside" in lines[0] or "checksum" in lines[0]


def test_a_truncated_cache_never_yields_a_wrong_vector(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    hashes, X = filled_cache(path)
    os.truncate(path, path.stat().st_size * 2 // 5)
    assert_never_wrong(path, hashes, X)
    assert asides(path)  # noticed (here at open) and set aside whole


def test_a_damaged_vector_fails_its_checksum_and_is_computed_again(tmp_path: Path) -> None:
    """A byte flipped inside one vector: SQLite cannot see it, the checksum does."""
    path = tmp_path / "c.sqlite"
    hashes, X = filled_cache(path, 20)
    data = path.read_bytes()
    at = data.find(X[7].tobytes()[:64])
    assert at > 0
    garble(path, at + 16, 4)
    with ContentCache(path) as cache:
        with pytest.raises(EnvironmentProblem, match="1 stored vectors failed their checksum"):
            cache.get_many(hashes, MODEL)
        assert cache.stored(hashes, MODEL) == set(hashes) - {hashes[7]}  # removed, to recompute
        got = cache.get_many(hashes, MODEL)
    assert len(got) == 19
    for h, entry in got.items():
        np.testing.assert_array_equal(entry.vector, X[hashes.index(h)])


def test_unopenable_caches_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(EnvironmentProblem, match=r"embedding cache .*a-folder.*pass cache PATH"):
        ContentCache(folder)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EnvironmentProblem, match=r"embedding cache .*file/c.sqlite.*pass cache PATH"):
        ContentCache(blocker / "c.sqlite")


# -- through the command line ------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def selected(out: Path) -> list[str]:
    import csv

    with open(out / "manifest.csv", newline="") as fh:
        return sorted(f"{r['path']} {r['hash']}" for r in csv.DictReader(fh) if r["status"] == "selected")


def test_select_on_a_damaged_cache_stops_in_one_line_then_recovers(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 14, "b": 12})
    cache = tmp_path / "cache" / "c.sqlite"
    args = ["--per-class", "5", "--k-min", "2", "--k-max", "3", "--cache", str(cache), *FAST]
    code, text = run("select", str(root), str(tmp_path / "first"), *args)
    assert code == 0, text
    size = cache.stat().st_size
    garble(cache, size // 3 // 4096 * 4096, size // 3)
    outcomes = []
    for attempt in range(3):
        code, text = run("select", str(root), str(tmp_path / f"again{attempt}"), *args)
        outcomes.append((code, text))
        if code == 0:
            break
        assert code == 3 and len(text.strip().splitlines()) == 1, text
        assert "--cache" in text and "Traceback" not in text
    assert code == 0, outcomes
    assert outcomes[0][0] == 3, "the damage went unnoticed"
    assert selected(tmp_path / f"again{attempt}") == selected(tmp_path / "first")


# -- the file system says no -------------------------------------------------------------------


def fill(disk: Path, leave: int) -> None:
    """Take all of the disk's free space but `leave` bytes."""
    free = shutil.disk_usage(disk).free
    with open(disk / "ballast", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_a_full_disk_is_one_line_naming_the_cache(small_disk: Path) -> None:
    path = small_disk / "c.sqlite"
    fill(small_disk, 96 * 1024)
    X = vectors(200)
    with pytest.raises(EnvironmentProblem) as caught, ContentCache(path) as cache:
        for i, h in enumerate(digests(200)):  # opening or any write may be the one that fails
            cache.put_many(MODEL, vectors=[(h, X[i])])
    message = caught.value.flag
    assert "full" in message and str(path) in message and "--cache" in message, message


def test_select_with_its_cache_on_a_full_disk_is_one_line(make_tree: TreeFactory, tmp_path: Path,
                                                          small_disk: Path) -> None:
    root = make_tree({"a": 40})
    fill(small_disk, 64 * 1024)
    cache = small_disk / "c.sqlite"
    code, text = run("select", str(root), str(tmp_path / "out"), "--per-class", "5", "--cache",
                     str(cache), *FAST)
    assert code == 3, text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text
    assert str(cache) in text and "--cache" in text and "full" in text
    assert not (tmp_path / "out").exists()


def test_a_read_only_cache_is_one_line(small_disk: Path) -> None:
    path = small_disk / "c.sqlite"
    filled_cache(path, 5)
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.strip()})")
    with pytest.raises(EnvironmentProblem) as caught, ContentCache(path) as cache:
        cache.put_many(MODEL, vectors=[("new", np.ones(4, np.float32))])
    message = caught.value.flag
    assert str(path) in message and "--cache" in message and "\n" not in message, message
