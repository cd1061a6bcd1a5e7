"""Stages do not reach into each other: the hygiene package loads only what a caller imports,
the engines and the vectors file share types without import circles, --vectors runs on narrow
options, and --workers is settled once on a run's path."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import grimp
import numpy as np
import pytest

import repsample
from conftest import FAST_MODEL, TreeFactory
from repsample.cache import ContentCache
from repsample.config import SelectConfig
from repsample.dataset import open_dataset
from repsample.embedding.decode import decode_workers
from repsample.embedding.embed import gather
from repsample.embedding.engines import EmbedOptions
from repsample.embedding.vectors_file import FillOptions, embed_from_file, read_vectors
from repsample.errors import UsageError
from repsample.inputs.folder import scan
from repsample.models import get_model
from repsample.progress import SilentProgress


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_leaks_loads_leaks_only() -> None:
    loaded = _loaded_after("import repsample.hygiene.leaks")
    ours = {m for m in loaded if m.split(".")[0] == "repsample"}
    assert ours == {"repsample", "repsample._version", "repsample.hygiene", "repsample.hygiene.leaks"}
    assert not {"numpy", "sklearn", "faiss", "torch", "PIL"} & loaded


def test_no_import_circle_in_the_embedding_stage() -> None:
    graph = grimp.build_graph("repsample")
    stage = {m for m in graph.modules if m.startswith("repsample.embedding")}
    circles = [(m, d) for m in stage for d in graph.find_modules_directly_imported_by(m)
               if d.startswith("repsample") and graph.chain_exists(importer=d, imported=m)]
    assert circles == []
    # the orchestrators' shared module goes through the engines' dispatch, never into an engine
    reached = graph.find_modules_directly_imported_by("repsample.dataset")
    assert not {"repsample.embedding.engines.local", "repsample.embedding.engines.ray"} & reached
    assert not graph.chain_exists(importer="repsample.embedding", imported="repsample.config",
                                  as_packages=True)


def test_no_import_circle_anywhere() -> None:
    """Issue 23: no module reaches, by any chain of imports (lazy ones too), a module that imports it."""
    graph = grimp.build_graph("repsample")
    circles = [(m, d) for m in graph.modules for d in graph.find_modules_directly_imported_by(m)
               if d.startswith("repsample") and d != m and graph.chain_exists(importer=d, imported=m)]
    assert circles == []


def test_the_house_stays_readable() -> None:
    """Issue 23: at most 15 modules beside the stage packages, and no function over 60 lines."""
    import ast

    src = Path(repsample.__file__).parent
    assert len(list(src.glob("*.py"))) <= 15
    long = [f"{path.relative_to(src)}:{node.name}" for path in src.rglob("*.py")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > 60]
    assert long == []


def _vectors(tmp_path: Path, keys: list[str], dim: int = 8) -> Path:
    vectors = np.random.default_rng(0).normal(size=(len(keys), dim)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "v.txt").write_text("\n".join(keys))
    return tmp_path / "v.npy"


def test_embed_from_file_on_narrow_options(make_tree: TreeFactory, tmp_path: Path) -> None:
    root = make_tree({"a": 4})
    groups = scan(root)
    source = read_vectors(_vectors(tmp_path, [f"a/img_{i:03d}.jpg" for i in range(1, 4)]))
    fill = FillOptions(get_model(FAST_MODEL["model"]))  # missing_vectors error: no model runs
    with ContentCache(tmp_path / "c.sqlite") as cache:
        embedder, stage = embed_from_file(root, groups, source, cache, fill,
                                          EmbedOptions(device="cpu", workers=2), SilentProgress())
        embedded = gather(stage.prints["a"], cache, embedder)
    assert embedder.spec.name == f"embeddings:{source.path}" and stage.computed == {"a": 0}
    assert embedded.errors == ["no vector in v.npy", None, None, None]
    np.testing.assert_array_equal(embedded.vectors, source.vectors)


@pytest.mark.parametrize(
    ("keys", "missing_vectors", "option", "needle"),
    [
        (["elsewhere/img_000.jpg"], "error", "embeddings", "none of its 1 rows matches"),
        (["a/img_000.jpg"], "embed", "missing_vectors", "gives 1280-d"),  # the vectors are 8-d
    ],
)
def test_embed_from_file_still_refuses(make_tree: TreeFactory, tmp_path: Path, keys: list[str],
                                       missing_vectors: str, option: str, needle: str) -> None:
    root = make_tree({"a": 2})
    source = read_vectors(_vectors(tmp_path, keys))
    fill = FillOptions(get_model("efficientnet-lite0"), missing_vectors)
    with ContentCache(tmp_path / "c.sqlite") as cache, pytest.raises(UsageError) as refused:
        embed_from_file(root, scan(root), source, cache, fill, EmbedOptions(device="cpu"),
                        SilentProgress())
    assert refused.value.option == option and needle in str(refused.value)


@contextmanager
def _calls_of(function: Any) -> Iterator[list[int]]:
    """Counts this thread's calls of function (a profiler hook: the real code runs)."""
    calls: list[int] = []

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is function.__code__:
            calls.append(1)

    sys.setprofile(hook)
    try:
        yield calls
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("vectors_file", [False, True])
def test_workers_settled_once_on_a_run(make_tree: TreeFactory, tmp_path: Path,
                                       vectors_file: bool) -> None:
    root = make_tree({"a": 3})
    embeddings = _vectors(tmp_path, ["a/img_000.jpg"], 512) if vectors_file else None
    config = SelectConfig(model=FAST_MODEL["model"], weights=FAST_MODEL["weights"], device="cpu",
                          cache=tmp_path / "c.sqlite", embeddings=embeddings,
                          missing_vectors="embed" if vectors_file else "error")
    warm = dataclasses.replace(config, cache=tmp_path / "warm.sqlite")
    with open_dataset(root, warm, SilentProgress()):  # the model's one-time build, unprofiled (slow so)
        pass
    with _calls_of(decode_workers) as calls, open_dataset(root, config, SilentProgress()) as data:
        assert sum(len(p) for p in data.embedded.prints.values()) == 3
    assert len(calls) == 1
    assert EmbedOptions(workers=0).threads == 1 and EmbedOptions(workers=3).threads == 3
