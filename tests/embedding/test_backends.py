"""Inference backends: ONNX Runtime equals eager PyTorch, exports are cached and checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import repsample.embedding.backends as backends
import repsample.embedding.backends.onnx as onnx_backend
from repsample.cli import cli
from repsample.embedding.decode import decode_image
from repsample.embedding.embed import Embedder
from repsample.errors import RepsampleError

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "fashion" / "train"


def real_batch(embedder: Embedder, n: int = 24) -> np.ndarray:
    """Preprocessed Fashion-MNIST images from two classes (real pixels, real preprocessing)."""
    paths = sorted(EXAMPLE.glob("*/*.png"))[:: max(1, 180 // n)][:n]
    pre = embedder.spec.preprocess
    return np.stack([pre(decode_image(p, pre.draft_size)) for p in paths])


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


def ten_nearest(E: np.ndarray) -> np.ndarray:
    d = ((E[:, None, :].astype(np.float64) - E[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :10]


@pytest.mark.parametrize(("model", "weights"), [("efficientnet-lite0", "default"),
                                                ("resnet18", "random")])
def test_onnx_equals_eager_within_1e4(tmp_path: Path, model: str, weights: str) -> None:
    eager = Embedder(model, weights, "cpu", "torch", tmp_path)
    fast = Embedder(model, weights, "cpu", "onnx", tmp_path)
    batch = real_batch(eager)
    reference, ours = eager(batch), fast(batch)
    assert fast.backend == "onnx" and eager.backend == "torch"
    assert fast.key == eager.key  # shared cache entries are only honest because of the bound below
    assert relative_error(ours, reference) < 1e-4
    assert (ten_nearest(ours) == ten_nearest(reference)).all()


def test_export_is_cached_and_keyed_by_weights(tmp_path: Path) -> None:
    first = Embedder("resnet18", "random", "cpu", "onnx", tmp_path)
    first.load()
    files = sorted(tmp_path.glob("*.onnx"))
    assert len(files) == 1 and files[0].name.startswith("resnet18-")
    stamp = files[0].stat().st_mtime_ns
    again = Embedder("resnet18", "random", "cpu", "onnx", tmp_path)
    again.load()
    assert files[0].stat().st_mtime_ns == stamp  # reused, not exported again
    weights = tmp_path / "w.pt"
    import torch

    state = Embedder("resnet18", "random", "cpu", "torch").spec.build("random").state_dict()
    state["conv1.weight"] = state["conv1.weight"] * 1.01
    torch.save(state, weights)
    Embedder("resnet18", str(weights), "cpu", "onnx", tmp_path).load()
    assert len(list(tmp_path.glob("*.onnx"))) == 2  # other weights, other export
    assert not list(tmp_path.glob("*.tmp"))


def test_export_that_does_not_match_falls_back_to_eager(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_backend, "TOLERANCE", 0.0)  # no float export matches exactly
    embedder = Embedder("resnet18", "random", "cpu", "onnx", tmp_path)
    key = embedder.key
    out = embedder(real_batch(embedder, 4))
    assert embedder.backend == "torch" and embedder.key == key and out.shape == (4, 512)
    assert not list(tmp_path.glob("*.onnx"))  # a rejected export is not kept


def test_auto_backend_and_missing_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Embedder(device="cpu", models_dir=tmp_path).backend == "onnx"
    # onnxruntime is installed here; pretend it is not (the only way to see that path).
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    assert Embedder(device="cpu", models_dir=tmp_path).backend == "torch"
    with pytest.raises(RepsampleError, match=r"pip install 'repsample\[onnx\]'"):
        Embedder(device="cpu", backend="onnx")
    with pytest.raises(RepsampleError, match=r"^backend 'tensorrt' is unknown"):
        Embedder(device="cpu", backend="tensorrt")
    with pytest.raises(RepsampleError, match="CUDA only"):
        Embedder(device="cpu", precision="fp16")


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA GPU on this machine"))]


@pytest.mark.parametrize("device", DEVICES)
def test_default_path_keeps_every_images_ten_nearest_neighbours(tmp_path: Path, device: str) -> None:
    """Whatever the default backend and precision on a device, every image keeps the 10 nearest
    neighbours that eager float32 on the CPU gives it (fp16 does not, so it is opt-in)."""
    reference = Embedder(device="cpu", backend="torch")
    batch = real_batch(reference, 40)
    default = Embedder(device=device, models_dir=tmp_path)
    assert (ten_nearest(default(batch)) == ten_nearest(reference(batch))).all()


def test_cli_backends_select_the_same(tmp_path: Path, make_tree: object, cache_path: Path) -> None:
    root = make_tree({"train/a": 14})  # type: ignore[operator]
    base = ["select", str(root), "--per-class", "6", "--k-min", "2", "--k-max", "3", "-q",
            "--no-report", "--weights", "random", "--device", "cpu"]
    runner = CliRunner()
    chosen = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        result = runner.invoke(cli, [*base, str(out), "--backend", backend,
                                     "--cache", str(tmp_path / f"{backend}.sqlite")])
        assert result.exit_code == 0, result.output
        record = json.loads((out / "run.json").read_text())
        assert record["model"]["backend"] == backend
        chosen[backend] = sorted(p.name for p in (out / "train" / "a").iterdir())
    assert chosen["torch"] == chosen["onnx"] and len(chosen["torch"]) == 6
