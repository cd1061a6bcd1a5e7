"""--precision: int8 (ONNX Runtime, static quantization) and bf16 (OpenVINO) against fp32.

The bars are what was measured on the real default model and the shipped Fashion-MNIST examples
(docs/benchmarks.md): int8 mean cosine to fp32 0.980 (lowest image 0.93), bf16 0.998 (0.99).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from repsample.backends import check_precision
from repsample.backends.quantize import calibration_batch
from repsample.cache import EmbeddingCache
from repsample.cli import cli
from repsample.decode import decode_image
from repsample.embed import Embedder, embed_images
from repsample.errors import RepsampleError
from repsample.models import get_model

EXAMPLE = Path(__file__).parent.parent / "examples" / "fashion" / "train"
PATHS = sorted(EXAMPLE.glob("*/*.png"))[::6][:30]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def native_bf16() -> bool:
    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (and models folder beside it) for the module: exporting and quantizing once."""
    return tmp_path_factory.mktemp("precision") / "embeddings.sqlite"


def test_precision_is_part_of_the_cache_key(cache: Path) -> None:
    fp32 = embed_images(PATHS, device="cpu", cache=cache, workers=1)
    int8 = embed_images(PATHS, device="cpu", cache=cache, workers=1, precision="int8")
    again = embed_images(PATHS, device="cpu", cache=cache, workers=1)
    assert not np.array_equal(fp32.vectors, int8.vectors)  # int8 did not read fp32's rows
    np.testing.assert_array_equal(again.vectors, fp32.vectors)  # nor overwrite them
    keys = {p: Embedder(device="cpu", precision=p).key for p in ("fp32", "int8", "bf16")}
    assert len(set(keys.values())) == 3
    with EmbeddingCache(cache) as db:
        hashes = [h for h in fp32.hashes if h]
        assert len(db.stored(hashes, keys["fp32"])) == len(set(hashes))
        assert len(db.stored(hashes, keys["int8"])) == len(set(hashes))


def test_int8_vectors_are_close_to_fp32_and_do_not_depend_on_the_batch(cache: Path) -> None:
    fp32 = embed_images(PATHS, device="cpu", cache=cache, workers=1).vectors
    int8 = Embedder(device="cpu", precision="int8", models_dir=cache.parent / "models")
    pre = int8.spec.preprocess
    batch = np.stack([pre(decode_image(p, pre.draft_size)) for p in PATHS])
    together = int8(batch)
    c = cosines(together, fp32)
    assert c.mean() >= 0.97 and c.min() >= 0.90, (c.mean(), c.min())
    alone = np.vstack([int8(batch[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(alone, together[:4], rtol=1e-4, atol=1e-5)  # static scales


def test_the_calibration_set_is_fixed() -> None:
    pre = get_model("efficientnet-lite0").preprocess
    a, b = calibration_batch(pre, 6), calibration_batch(pre, 6)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 3, *pre.size[::-1]) and a.std() > 0.3  # varied, not flat


@pytest.mark.skipif(not native_bf16(), reason="no OpenVINO or no native bf16 on this CPU")
def test_bf16_vectors_are_close_to_fp32(cache: Path) -> None:
    fp32 = embed_images(PATHS, device="cpu", cache=cache, workers=1).vectors
    bf16 = embed_images(PATHS, device="cpu", cache=cache, workers=1, precision="bf16").vectors
    c = cosines(bf16, fp32)
    assert c.mean() >= 0.99 and c.min() >= 0.98, (c.mean(), c.min())


def test_bf16_without_openvino_names_the_extra(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(RepsampleError, match=r"pip install 'repsample\[openvino\]'"):
        Embedder(device="cpu", precision="bf16", models_dir=cache.parent / "models").load()


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs openvino")
def test_bf16_on_a_cpu_without_it_is_one_clear_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine's CPU has bf16; a CPU without it is imitated by what OpenVINO reports of it.
    import openvino

    real = openvino.Core.get_property
    monkeypatch.setattr(openvino.Core, "get_property", lambda self, dev, name: (
        ["FP32", "INT8"] if name == "OPTIMIZATION_CAPABILITIES" else real(self, dev, name)))
    with pytest.raises(RepsampleError, match="needs a CPU with native bf16"):
        Embedder(device="cpu", precision="bf16", models_dir=cache.parent / "models").load()


@pytest.mark.parametrize(("precision", "device", "backend", "message"), [
    ("int4", "cpu", "auto", "choose one of: fp32, int8, bf16, fp16"),
    ("fp16", "cpu", "auto", "CUDA only"),
    ("int8", "cuda", "auto", "^precision int8 runs on the CPU .*; choose device cpu$"),
    ("int8", "cpu", "torch", "not backend torch"),
    ("bf16", "cpu", "torch", "not backend torch"),
])
def test_impossible_combinations_are_refused(precision: str, device: str, backend: str,
                                             message: str) -> None:
    with pytest.raises(RepsampleError, match=message):
        check_precision(precision, device, backend)


@pytest.mark.parametrize("command", ["select", "check"])
def test_cli_lists_the_option(command: str) -> None:
    out = CliRunner().invoke(cli, [command, "--help"]).output
    assert "--precision [fp32|int8|bf16|fp16]" in out


def test_cli_refuses_int8_on_cuda_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", str(EXAMPLE), str(tmp_path / "out"),
                                      "--precision", "int8", "--device", "cuda"])
    assert result.exit_code == 2
    assert "--precision int8 runs on the CPU" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
