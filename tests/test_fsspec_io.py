"""INPUT and OUTPUT as fsspec URLs, on fsspec's in-memory file system (never a real cloud)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from conftest import DATA, TreeFactory
from repsample import fsio
from repsample.errors import RepsampleError
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.pipeline import select

FAST = {"per_class": 4, "k_min": 2, "k_max": 3, "report": False, "weights": "random"}


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh memory:// folder, removed afterwards (the memory file system is process-wide)."""
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url.split("://", 1)[1]):
        fs.rm(url.split("://", 1)[1], recursive=True)


def _upload(local: Path, url: str) -> None:
    fs, base = fsio.url_fs(url)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.pipe_file(f"{base}/{path.relative_to(local).as_posix()}", path.read_bytes())


@pytest.fixture
def tree(make_tree: TreeFactory) -> Path:
    root = make_tree({"train/a": 9, "train/b": 7}, ext=".png")
    shutil.copy(DATA / "truncated.jpg", root / "train/a/broken.jpg")
    return root


def test_bucket_input_gives_the_local_result(tree: Path, bucket: str, tmp_path: Path) -> None:
    _upload(tree, bucket)
    cache = tmp_path / "c" / "cache.sqlite"
    local = select(tree, tmp_path / "local", cache=cache, **FAST)
    remote = select(bucket + "/", tmp_path / "remote", cache=cache, **FAST)

    assert read_manifest(remote.manifest_path) == read_manifest(local.manifest_path)
    assert sum(g.embedded for g in remote.groups) == 0  # same contents: the cache serves them
    for rel in remote.selected():  # exported from the bucket, byte for byte
        name = rel.rsplit("/", 1)[1]
        group = rel.rsplit("/", 1)[0]
        assert (tmp_path / "remote" / group / name).read_bytes() == (tree / rel).read_bytes()
    assert remote.input == bucket
    assert '"input": "' + bucket + '"' in remote.run_record_path.read_text()


def test_unchanged_bucket_files_are_not_read_again(tree: Path, bucket: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _upload(tree, bucket)
    cache = tmp_path / "cache.sqlite"
    first = select(bucket, tmp_path / "one", cache=cache, mode="none", **FAST)
    assert sum(g.embedded for g in first.groups) == 9 + 7 + 1

    def no_reads(location: object) -> bytes:
        raise AssertionError(f"read {location}")

    monkeypatch.setattr(fsio, "read_bytes", no_reads)
    monkeypatch.setattr(fsio, "open_binary", no_reads)
    again = select(bucket, tmp_path / "two", cache=cache, mode="none", **FAST)
    assert again.selected() == first.selected()


def test_output_to_a_bucket(tree: Path, bucket: str, tmp_path: Path) -> None:
    result = select(tree, bucket + "/out", cache=tmp_path / "cache.sqlite", **FAST)
    assert result.destination == bucket + "/out" and not result.output.exists()
    fs, base = fsio.url_fs(bucket + "/out")
    names = {p[len(base) + 1:] for p in fs.find(base)}
    assert {"manifest.csv", "run.json"} <= names
    assert {f"{rel.rsplit('/', 1)[0]}/{rel.rsplit('/', 1)[1]}" for rel in result.selected()} <= names
    assert fs.cat_file(f"{base}/{result.selected()[0]}") == (tree / result.selected()[0]).read_bytes()

    with pytest.raises(RepsampleError, match="is not empty; pass overwrite"):  # Python's name
        select(tree, bucket + "/out", cache=tmp_path / "cache.sqlite", **FAST)
    select(tree, bucket + "/out", cache=tmp_path / "cache.sqlite", overwrite=True, **FAST)


def test_file_urls_are_local_paths(tree: Path, tmp_path: Path) -> None:
    assert fsio.as_location(f"file://{tree}") == tree
    result = select(f"file://{tree}", f"file://{tmp_path / 'out'}", cache=tmp_path / "c.sqlite",
                    mode="hardlink", **FAST)
    assert result.output == tmp_path / "out" and len(result.selected()) == 8


def test_url_input_refuses_links(tree: Path, bucket: str, tmp_path: Path) -> None:
    _upload(tree, bucket)
    with pytest.raises(RepsampleError, match=r"^mode symlink needs INPUT on the local disk"):
        select(bucket, tmp_path / "out", mode="symlink", **FAST)
    with pytest.raises(RepsampleError, match="is inside INPUT"):
        select(bucket, bucket + "/out", **FAST)


def test_missing_bucket_and_missing_driver(tmp_path: Path) -> None:
    with pytest.raises(RepsampleError, match="is not a folder"):
        select("memory://no-such-bucket", tmp_path / "out", **FAST)
    try:
        import s3fs  # noqa: F401
    except ImportError:
        hint = r"s3fs is not installed; run: pip install 'repsample\[s3\]'"
        with pytest.raises(RepsampleError, match=hint):
            fsio.url_fs("s3://bucket/data")
    with pytest.raises(RepsampleError, match="cannot open nosuch://x"):
        fsio.url_fs("nosuch://x")


def test_cli_summary_names_the_url_not_the_removed_stage(tree: Path, bucket: str,
                                                         tmp_path: Path) -> None:
    from click.testing import CliRunner

    from repsample.cli import cli

    shutil.copy(tree / "train/a/img_000.png", tree / "train/a/z_copy.png")  # a duplicate to report
    out = CliRunner().invoke(cli, [
        "select", str(tree), bucket + "/out", "--per-class", "4", "--k-min", "2", "--k-max", "3",
        "--no-report", "--weights", "random", "--cache", str(tmp_path / "c" / "cache.sqlite")])
    assert out.exit_code == 0, out.output
    assert f"{bucket}/out/check.csv" in out.output and f"{bucket}/out/manifest.csv" in out.output
    assert "repsample-upload-" not in out.output  # the local staging folder, gone by now


def test_a_url_whose_driver_is_missing_names_what_to_install() -> None:
    """An extra of ours where there is one; otherwise fsspec's own words (no made-up extra)."""
    from repsample.errors import RepsampleError
    from repsample.fsio import url_fs

    pytest.importorskip("fsspec")
    try:
        import smbprotocol  # type: ignore[import-not-found]  # noqa: F401
        pytest.skip("smbprotocol is installed here")
    except ImportError:
        pass
    with pytest.raises(RepsampleError, match=r"cannot read smb:// URLs: .*smbprotocol") as caught:
        url_fs("smb://server/share/a.png")
    assert "repsample[" not in str(caught.value)
