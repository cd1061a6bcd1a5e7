"""The CLI through click's runner: listings, a real run, and every user mistake as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, TreeFactory
from repsample.cli import cli

FAST = FAST_ARGS


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_listings() -> None:
    code, out = run("models")
    assert code == 0 and "efficientnet-lite0" in out and "resnet18" in out
    code, out = run("strategies")
    assert code == 0 and "centroid" in out


def test_select_prints_summary_table(make_tree: TreeFactory, tmp_path: Path,
                                     cache_path: Path) -> None:
    root = make_tree({"train/Coccidiosis": 14, "val/Coccidiosis": 4})
    code, out = run("select", str(root), str(tmp_path / "out"), "--per-class", "5",
                    "--cache", str(cache_path), *FAST)
    assert code == 0, out
    assert "train/Coccidiosis" in out and "total" in out
    assert len(list((tmp_path / "out" / "train" / "Coccidiosis").iterdir())) == 5
    assert len(list((tmp_path / "out" / "val" / "Coccidiosis").iterdir())) == 4


def one_line_error(code: int, out: str, *needles: str) -> None:
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    for needle in needles:
        assert needle in lines[0], (needle, out)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--model", "vgg99"], ["--model", "'vgg99'", "efficientnet-lite0", "resnet18"]),
        (["--strategy", "magic"], ["--strategy", "'magic'", "centroid"]),
        (["--device", "tpu"], ["--device", "'tpu'", "cuda:N"]),
        (["--per-class", "0"], ["--per-class must be at least 1"]),
        (["--weights", "nowhere.pt"], ["nowhere.pt"]),
        (["--k-min", "9", "--k-max", "3"], ["--k-min"]),
    ],
)
def test_bad_options(make_tree: TreeFactory, tmp_path: Path, extra: list[str],
                     needles: list[str]) -> None:
    root = make_tree({"a": 3})
    code, out = run("select", str(root), str(tmp_path / "out"), *extra)
    one_line_error(code, out, *needles)
    assert not (tmp_path / "out").exists()


def test_bad_paths(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 3})
    one_line_error(*run("select", str(tmp_path / "missing"), str(tmp_path / "o")), "does not exist")
    one_line_error(*run("select", str(root / "a" / "img_000.jpg"), str(tmp_path / "o")),
                   "not a folder")
    one_line_error(*run("select", str(root), str(root / "sub")), "inside INPUT")
    one_line_error(*run("select", str(root), str(root)), "inside INPUT")
    one_line_error(*run("select", str(root), str(tmp_path)), "contains INPUT")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("someone's file")
    one_line_error(*run("select", str(root), str(tmp_path / "full")), "not empty", "not written by")
    one_line_error(*run("select", str(root), str(tmp_path / "full"), "--overwrite"), "not written by")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty_in").mkdir()
    one_line_error(*run("select", str(tmp_path / "empty_in"), str(tmp_path / "o")),
                   "no images found", ".jpg .jpeg .png")
    assert not (tmp_path / "o").exists()


def test_overwrite_replaces_only_earlier_selection(make_tree: TreeFactory, tmp_path: Path,
                                                   cache_path: Path) -> None:
    root = make_tree({"a": 10})
    out = tmp_path / "out"
    assert run("select", str(root), str(out), "--per-class", "6", "--cache", str(cache_path),
               *FAST)[0] == 0
    (out / "notes.txt").write_text("mine")
    again = ("select", str(root), str(out), "--per-class", "2", "--overwrite", "--cache", str(cache_path),
             *FAST)
    # A file repsample did not write is neither deleted nor published as part of a result.
    one_line_error(*run(*again), "notes.txt", "did not write")
    assert (out / "notes.txt").read_text() == "mine" and len(list((out / "a").iterdir())) == 6
    (out / "notes.txt").unlink()
    code, text = run(*again)
    assert code == 0, text
    assert len(list((out / "a").iterdir())) == 2


def test_unusable_cache_is_one_line(make_tree: TreeFactory, tmp_path: Path) -> None:
    """A cache path that cannot hold a database (here a folder) is the environment's problem:
    one line naming --cache, exit 3. (A file that is not a repsample cache is refused and left as
    it is, exit 2: tests/test_trust_cache.py.)"""
    root = make_tree({"a": 3})
    bogus = tmp_path / "cache.sqlite"
    bogus.mkdir()
    code, out = run("select", str(root), str(tmp_path / "o"), "--cache", str(bogus), *FAST)
    assert code == 3, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and f"embedding cache {bogus}" in lines[0] and "--cache PATH" in lines[0]
    assert not (tmp_path / "o").exists()
