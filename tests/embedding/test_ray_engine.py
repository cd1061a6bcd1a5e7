"""The Ray engine on a local Ray (num_cpus=2, one session for the module): same result as the local
engine, a consistent cache when an actor dies mid-batch, the install hint when Ray is missing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import DATA, TreeFactory
from repsample.cache import RACY_NS, ContentCache
from repsample.cli import cli
from repsample.embedding.descriptor import DESCRIPTOR_KEY
from repsample.embedding.embed import Embedder
from repsample.embedding.engines import EmbedOptions, run_embed_stage
from repsample.embedding.engines.ray import EmbedActor, run
from repsample.embedding.quality import QUALITY_KEY
from repsample.errors import RepsampleError
from repsample.inputs.folder import scan
from repsample.output.files import read_csv_rows as read_manifest  # the rows as written
from repsample.pipeline import select
from repsample.progress import SilentProgress

FAST = {"per_class": 6, "k_min": 2, "k_max": 4, "report": False}


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One local Ray for every test here: starting one costs several seconds."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def mixed_tree(make_tree: TreeFactory, tmp_path: Path) -> Path:
    """Two groups of real PNGs, plus a truncated JPEG and a file repeated under another name."""
    root = make_tree({"train/a": 14, "train/b": 12}, ext=".png")
    shutil.copy(DATA / "truncated.jpg", root / "train/a/broken.jpg")
    shutil.copy(root / "train/b/img_000.png", root / "train/a/copy_of_b0.png")
    return root


def _vectors(cache: Path) -> dict[str, tuple[bytes | None, str | None]]:
    with sqlite3.connect(cache) as db:  # a vector's last 4 bytes are its checksum (repsample.cache)
        return {h: (v and v[:-4], e)
                for h, v, e in db.execute("SELECT hash, vector, error FROM embeddings "
                                          "WHERE model NOT IN (?, ?)",
                                          (DESCRIPTOR_KEY, QUALITY_KEY))}  # the model's rows only


def test_ray_selection_is_identical_to_local(ray_session: Any, example_tree: Path, tmp_path: Path) -> None:
    shutil.copy(DATA / "truncated.jpg", example_tree / "train/Ankle boot/broken.jpg")
    caches = tmp_path / "caches"  # both caches share one folder, so one ONNX export serves both
    local = select(example_tree, tmp_path / "local", cache=caches / "local.sqlite", **FAST)
    ray = select(example_tree, tmp_path / "ray", cache=caches / "ray.sqlite", engine="ray", **FAST)

    assert read_manifest(ray.manifest_path) == read_manifest(local.manifest_path)
    assert ray.selected() == local.selected() and len(local.selected()) == 12
    assert next(r for r in ray.rows if r["status"] == "error")["path"].endswith("broken.jpg")
    record = json.loads(ray.run_record_path.read_text())
    assert record["parameters"]["engine"] == "ray"
    assert record["totals"] == json.loads(local.run_record_path.read_text())["totals"]
    ours, theirs = _vectors(caches / "ray.sqlite"), _vectors(caches / "local.sqlite")
    assert ours.keys() == theirs.keys()
    for digest, (vector, error) in theirs.items():
        assert ours[digest][1] == error
        if vector is not None:
            np.testing.assert_allclose(np.frombuffer(ours[digest][0] or b"", np.float32),
                                       np.frombuffer(vector, np.float32), rtol=1e-5, atol=1e-6)


def test_rerun_reads_nothing_and_starts_no_work(ray_session: Any, mixed_tree: Path,
                                                 cache_path: Path, tmp_path: Path) -> None:
    first = select(mixed_tree, tmp_path / "one", cache=cache_path, engine="ray", weights="random", **FAST)
    again = select(mixed_tree, tmp_path / "two", cache=cache_path, engine="ray", weights="random", **FAST)
    assert sum(g.embedded for g in first.groups) == 14 + 12 + 1  # the copy is no new content
    assert sum(g.embedded for g in again.groups) == 0
    assert again.selected() == first.selected()


def test_a_killed_actor_batch_is_redone_without_lost_or_duplicate_rows(
    ray_session: Any, mixed_tree: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed-once"

    class CrashOnce(EmbedActor):
        """Dies (no exception, the process exits) on the first batch any actor gets."""

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return super().__call__(batch)
            os.close(fd)
            os._exit(1)

    groups = scan(mixed_tree)
    (mixed_tree / "train/b/img_011.png").unlink()  # gone between scan and read: a read error
    time.sleep(RACY_NS / 1e9)  # files older than the racy window: their hashes are remembered
    options = EmbedOptions(batch_size=4, workers=2, device="cpu")
    results = {}
    for name, engine in (("ray", "ray"), ("local", "local")):
        cache = tmp_path / "caches" / f"{name}.sqlite"
        embedder = Embedder(weights="random", device="cpu", models_dir=cache.parent / "models")
        with ContentCache(cache) as db:
            if engine == "ray":
                stage = run(groups, db, embedder, options, SilentProgress(), actor_cls=CrashOnce)
            else:
                stage = run_embed_stage(engine, groups, db, embedder, options, SilentProgress())
        results[name] = (stage, _vectors(cache))

    assert marker.exists()  # an actor did die
    (ray_stage, ours), (local_stage, theirs) = results["ray"], results["local"]
    assert ray_stage.prints == local_stage.prints
    assert ray_stage.computed == local_stage.computed
    assert ray_stage.prints["train/b"][-1].error == "cannot read file: No such file or directory"
    assert ours.keys() == theirs.keys() and len(ours) == 14 + 11 + 1  # every content, the broken one too
    with sqlite3.connect(tmp_path / "caches" / "ray.sqlite") as db:
        rows = db.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM embeddings "
                          "WHERE model NOT IN (?, ?)", (DESCRIPTOR_KEY, QUALITY_KEY)).fetchone()
        assert rows == (26, 26)
        files = db.execute("SELECT COUNT(*) FROM file_hashes").fetchone()[0]
    assert files == 14 + 11 + 2
    for digest, (vector, error) in theirs.items():
        assert ours[digest][1] == error
        if vector is not None:
            np.testing.assert_allclose(np.frombuffer(ours[digest][0] or b"", np.float32),
                                       np.frombuffer(vector, np.float32), rtol=1e-5, atol=1e-6)


def test_missing_ray_is_the_install_hint(make_tree: TreeFactory, cache_path: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree({"g": 3}, ext=".png")
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    result = CliRunner().invoke(cli, ["select", str(root), str(tmp_path / "out"), "--engine", "ray",
                                      "--weights", "random", "--cache", str(cache_path), "-q"])
    assert result.exit_code == 2
    assert "pip install 'repsample[ray]'" in result.output
    assert not (tmp_path / "out").exists()


def test_ray_address_needs_the_ray_engine(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"g": 3}, ext=".png")
    with pytest.raises(RepsampleError, match=r"^ray_address needs engine ray$"):  # Python's names
        select(root, tmp_path / "out", ray_address="ray://head:10001")
    with pytest.raises(RepsampleError, match=r"^engine 'spark' is unknown; choose one of: local, ray$"):
        select(root, tmp_path / "out", engine="spark")
