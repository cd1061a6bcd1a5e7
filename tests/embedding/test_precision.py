"""--precision: int8 (ONNX Runtime, static quantization) and bf16 (OpenVINO) against fp32.

The bars are what was measured on the real default model and the shipped Fashion-MNIST examples
(docs/benchmarks.md): int8 mean cosine to fp32 0.980 (lowest image 0.93), bf16 0.998 (0.99).
int8's form follows the CPU (backends/quantize.int8_form); each test holds the promise of the CPU
running it, and the form for x86 CPUs without VNNI is held on every CPU: its integer sums are the
same on all of them (bench/int8_forms.py --against, under qemu -cpu EPYC-Rome).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from repsample.cache import ContentCache
from repsample.cli import cli
from repsample.embedding.backends import check_precision
from repsample.embedding.backends import quantize as quantize_module
from repsample.embedding.backends.quantize import U8FULL, U8S8, calibration_batch, int8_form, quantized_path
from repsample.embedding.decode import decode_image
from repsample.embedding.embed import Embedder, embed_images
from repsample.errors import RepsampleError
from repsample.models import get_model

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "fashion" / "train"
PATHS = sorted(EXAMPLE.glob("*/*.png"))[::6][:30]
AVX2_ONLY = frozenset({"sse2", "avx", "avx2", "fma3", "f16c"})  # AMD EPYC Rome, Intel Haswell
VNNI = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512vnni"}  # Cascade Lake and later


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


def imitate_cpu(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], machine: str = "x86_64") -> None:
    """What this process's CPU reports, as backends/quantize reads it."""
    monkeypatch.setattr(quantize_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(quantize_module.platform, "machine", lambda: machine)


@pytest.mark.parametrize(("flags", "machine", "form"), [
    (AVX2_ONLY, "x86_64", U8FULL),  # VPMADDUBSW adds uint8 x int8 pairs in 16 bits: saturates
    (AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl"}, "x86_64", U8FULL),  # Skylake-X: no VNNI yet
    (VNNI, "x86_64", U8S8),
    (VNNI, "AMD64", U8S8),  # Windows spells it so
    (AVX2_ONLY, "AMD64", U8FULL),
    (frozenset(), "x86_64", U8FULL),  # flags unknown: the form that is exact everywhere
    (frozenset({"neon", "asimd", "asimddp"}), "aarch64", U8S8),  # Arm kernels widen or use dot products
    (frozenset(), "arm64", U8S8),
])
def test_int8_form_follows_the_cpu(flags: frozenset[str], machine: str, form: object) -> None:
    assert int8_form(flags, machine) == form


def test_this_cpu_reports_its_features() -> None:
    flags = quantize_module.cpu_flags()
    if quantize_module.platform.machine().lower() in quantize_module.X86:
        assert "sse2" in flags, sorted(flags)  # read at all: else every x86 CPU takes the slower form
    cpuinfo = Path("/proc/cpuinfo")
    if "avx512vnni" in flags and cpuinfo.is_file():  # never VNNI that the kernel does not report
        assert "avx512_vnni" in cpuinfo.read_text()


def test_the_int8_form_is_part_of_the_cache_key_and_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {}
    for flags in (VNNI, AVX2_ONLY):
        imitate_cpu(monkeypatch, flags)
        keys[flags] = Embedder(device="cpu", precision="int8").key
    fp32 = Embedder(device="cpu").key
    # u8s8 keeps the key int8 had before forms existed: vectors cached then stay valid
    assert keys[VNNI] == fp32 + "|int8" and keys[AVX2_ONLY] == fp32 + "|int8-u8full"
    export = Path("efficientnet-lite0-0123.onnx")
    assert quantized_path(export, "static", U8S8) != quantized_path(export, "static", U8FULL)


def test_precision_is_part_of_the_cache_key(cache: Path) -> None:
    fp32 = embed_images(PATHS, device="cpu", cache=cache, workers=1)
    int8 = embed_images(PATHS, device="cpu", cache=cache, workers=1, precision="int8")
    again = embed_images(PATHS, device="cpu", cache=cache, workers=1)
    assert not np.array_equal(fp32.vectors, int8.vectors)  # int8 did not read fp32's rows
    np.testing.assert_array_equal(again.vectors, fp32.vectors)  # nor overwrite them
    keys = {p: Embedder(device="cpu", precision=p).key for p in ("fp32", "int8", "bf16")}
    assert len(set(keys.values())) == 3
    with ContentCache(cache) as db:
        hashes = [h for h in fp32.hashes if h]
        assert len(db.stored(hashes, keys["fp32"])) == len(set(hashes))
        assert len(db.stored(hashes, keys["int8"])) == len(set(hashes))


@pytest.mark.parametrize("cpu", ["this one", "x86 without VNNI"])
def test_int8_vectors_are_close_to_fp32_and_do_not_depend_on_the_batch(
        cache: Path, cpu: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # "this one": the form this CPU gets, on it. "x86 without VNNI": that form, on this CPU; its
    # integer sums are the same on every CPU, so this is what an AVX2-only CPU computes too.
    if cpu != "this one":
        imitate_cpu(monkeypatch, AVX2_ONLY)
    fp32 = embed_images(PATHS, device="cpu", cache=cache, workers=1).vectors
    int8 = Embedder(device="cpu", precision="int8")
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


def test_bf16_without_openvino_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(RepsampleError, match=r"pip install 'repsample\[openvino\]'"):
        Embedder(device="cpu", precision="bf16").load()


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs openvino")
def test_bf16_on_a_cpu_without_it_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine's CPU has bf16; a CPU without it is imitated by what OpenVINO reports of it.
    import openvino

    real = openvino.Core.get_property
    monkeypatch.setattr(openvino.Core, "get_property", lambda self, dev, name: (
        ["FP32", "INT8"] if name == "OPTIMIZATION_CAPABILITIES" else real(self, dev, name)))
    with pytest.raises(RepsampleError, match="needs a CPU with native bf16"):
        Embedder(device="cpu", precision="bf16").load()


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


def select_int8(data: Path, out: Path, cache: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["select", str(data), str(out), "--precision", "int8", "--per-class",
                                      "2", "--cache", str(cache), "--no-report", "-q"])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes of four Fashion-MNIST examples each."""
    root = tmp_path_factory.mktemp("small")
    for path in PATHS[:4] + PATHS[-4:]:
        (root / path.parent.name).mkdir(exist_ok=True)
        (root / path.parent.name / path.name).write_bytes(path.read_bytes())
    return root


def test_cli_int8_on_a_cpu_without_vnni_runs_and_records_its_form(
        small_tree: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before, such a CPU ran the u8s8 form, whose kernels saturate there: always exit 2.
    imitate_cpu(monkeypatch, AVX2_ONLY)
    code, output = select_int8(small_tree, tmp_path / "out", cache)
    assert code == 0, output
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["model"]["cache_key"].endswith("|int8-u8full")


def test_int8_that_drifts_on_this_cpu_is_refused_in_one_line(
        small_tree: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A CPU whose kernels cannot run the form exactly, imitated by a bar no int8 model clears:
    # the check runs at every load, so the model quantized and kept earlier is refused as well.
    embed_images(PATHS[:1], device="cpu", cache=cache, workers=1, precision="int8")  # kept
    monkeypatch.setattr(quantize_module, "MIN_COSINE", 0.99999)
    code, output = select_int8(small_tree, tmp_path / "out", tmp_path / "fresh.sqlite")
    assert code == 2, output
    assert "--precision int8 (" in output and "drifts from fp32 on this CPU" in output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_int8_on_cuda_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", str(EXAMPLE), str(tmp_path / "out"),
                                      "--precision", "int8", "--device", "cuda"])
    assert result.exit_code == 2
    assert "--precision int8 runs on the CPU" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
