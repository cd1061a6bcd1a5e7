"""The default model's ONNX file is made once per user and model, from its weights alone (no
torch), and later runs load it with ONNX Runtime alone (real model, real CLI, fresh
subprocesses). Other models are exported with torch and checked once (test_export.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLE
from repsample.embedding.backends.onnx import export_name
from repsample.embedding.embed import Embedder, no_cuda_possible

MODEL_KEY = Embedder(device="cpu").fp32_key
BUILT = export_name(MODEL_KEY, built=True)  # the default model's file: built, not exported


def _batch() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """``code`` in a fresh Python: its output lines. REPSAMPLE_MODELS_DIR only where ``env`` sets it."""
    base = {k: v for k, v in os.environ.items() if k != "REPSAMPLE_MODELS_DIR"}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={**base, **(env or {})})
    return out.stdout.strip().splitlines()


def test_a_second_run_loads_the_export_without_torch(tmp_path: Path) -> None:
    first = Embedder(device="cpu", models_dir=tmp_path)
    vectors = first(_batch())
    assert first.backend == "onnx" and (tmp_path / BUILT).is_file()
    np.save(tmp_path / "batch.npy", _batch())
    code = (
        "import sys, numpy as np\n"
        "from repsample.embedding.embed import Embedder\n"
        f"e = Embedder(device='auto', models_dir={str(tmp_path)!r})\n"
        f"np.save({str(tmp_path / 'again.npy')!r}, e(np.load({str(tmp_path / 'batch.npy')!r})))\n"
        "print(e.backend, sorted(m for m in ('torch', 'efficientnet_lite_pytorch') if m in sys.modules))\n"
    )
    backend, loaded = _run(code)[-1].split(" ", 1)
    assert backend == "onnx"
    if no_cuda_possible():  # where a CUDA driver exists, device auto must ask torch
        assert loaded == "[]"
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), vectors, rtol=1e-5, atol=1e-6)


def test_a_damaged_export_is_made_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reference = Embedder(device="cpu", models_dir=tmp_path)(_batch())
    path = tmp_path / BUILT
    path.write_bytes(path.read_bytes()[:5000])  # truncated, as a full disk or a copy cut short leaves it
    again = Embedder(device="cpu", models_dir=tmp_path)
    np.testing.assert_allclose(again(_batch()), reference, rtol=1e-5, atol=1e-6)
    assert again.backend == "onnx" and path.stat().st_size > 5000
    assert "unreadable" in caplog.text and "exporting again" in caplog.text


@pytest.mark.skipif(not no_cuda_possible(), reason="a CUDA driver is present: device auto asks torch")
@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME names the user cache on Linux")
def test_the_cli_exports_to_the_user_folder_and_reruns_without_torch(tmp_path: Path) -> None:
    cache = tmp_path / "elsewhere" / "cache.sqlite"
    models = tmp_path / "xdg" / "repsample" / "models"  # the user's cache folder, as platformdirs names it
    data = tmp_path / "data"  # two real example groups, 12 images each: the export is what is tested
    for group in ("Bag", "Sandal"):
        for image in sorted((EXAMPLE / "train" / group).iterdir())[:12]:
            (data / group).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, data / group / image.name)
    code = (
        "import sys\n"
        "from repsample.cli import main\n"
        f"sys.argv = ['repsample', 'select', {str(data)!r}, sys.argv[1], '--per-class', '5',"
        f" '--cache', {str(cache)!r}, '--no-report', '-q']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('torch', 'efficientnet_lite_pytorch') if m in sys.modules))\n"
    )
    first = _run(code, str(tmp_path / "first"), env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert [p.name for p in models.iterdir()] == [BUILT]
    assert not (cache.parent / "models").exists()  # not beside --cache any more
    assert first[-1] == "[]"  # the first run built the graph from the weights: no torch either
    cache.unlink()  # a new cache: everything is embedded again, with the user's export
    # REPSAMPLE_MODELS_DIR wins over the user folder: the export is found there, nothing new made
    again = _run(code, str(tmp_path / "second"), env={"XDG_CACHE_HOME": str(tmp_path / "other"),
                                                       "REPSAMPLE_MODELS_DIR": str(models)})
    assert again[-1] == "[]"
    assert not (tmp_path / "other" / "repsample" / "models").exists()
    assert len(list(models.iterdir())) == 1
    first_rows = (tmp_path / "first" / "manifest.csv").read_text()
    assert (tmp_path / "second" / "manifest.csv").read_text() == first_rows
