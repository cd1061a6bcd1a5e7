"""PyTorch is an extra: the default path selects without it, and what needs it says which extra to
install in one line (exit 2).

The dev install has torch, so a run "without torch" is the real CLI in a fresh Python whose import
system says torch, torchvision, the eager architecture package and sympy do not exist (a meta path
finder raising ModuleNotFoundError, as Python does for a package that is not installed), nor their
package metadata (importlib.metadata raising PackageNotFoundError): the only stand-in here for a
second environment without them, checked against a real one (`pip install .`) by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE

HIDDEN = ("torch", "torchvision", "efficientnet_lite_pytorch", "sympy")  # sympy: torch brings it
DISTRIBUTIONS = ("torch", "torchvision", "efficientnet-lite-pytorch", "sympy")  # their metadata
WITHOUT_TORCH = f'''
import importlib.metadata as metadata
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HIDDEN!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

def hide(lookup):
    def hidden(name):
        if name.lower().replace("_", "-") in {DISTRIBUTIONS!r}:
            raise metadata.PackageNotFoundError(name)
        return lookup(name)
    return hidden

sys.meta_path.insert(0, NotInstalled())
metadata.version, metadata.distribution = hide(metadata.version), hide(metadata.distribution)
from repsample.cli import main
try:
    main()
finally:
    print("imported:", sorted(m for m in {HIDDEN!r} if m in sys.modules))
'''


def _run(args: list[str], models: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REPSAMPLE_MODELS_DIR": str(models)}
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real example groups, 10 images each."""
    root = tmp_path_factory.mktemp("data")
    for group in ("Bag", "Sandal"):
        (root / group).mkdir()
        for image in sorted((EXAMPLE / "train" / group).iterdir())[:10]:
            (root / group / image.name).write_bytes(image.read_bytes())
    return root


def test_the_default_path_selects_without_torch(data: Path, tmp_path: Path) -> None:
    """A fresh user folder: the default model's graph is built from its weights, no torch."""
    done = _run(["select", str(data), str(tmp_path / "out"), "--per-class", "4", "--cache",
                 str(tmp_path / "c.db"), "-q"], tmp_path / "models")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("imported: []")
    assert (tmp_path / "out" / "manifest.csv").is_file()
    assert len(list((tmp_path / "models").glob("efficientnet-lite0-*.onnx"))) == 1


@pytest.mark.parametrize(("option", "extra", "missing"), [
    (["--backend", "torch"], "torch", "PyTorch"),
    (["--device", "cuda"], "torch", "PyTorch"),
    (["--weights", "random"], "torch", "PyTorch"),
    (["--model", "resnet18"], "torchvision", "PyTorch"),
    (["--precision", "int8"], "int8", "sympy"),
])
def test_what_needs_torch_names_its_extra(data: Path, tmp_path: Path, option: list[str],
                                          extra: str, missing: str) -> None:
    done = _run(["select", str(data), str(tmp_path / "out"), "--cache", str(tmp_path / "c.db"),
                 "-q", *option], tmp_path / "models")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert f"pip install 'repsample[{extra}]'" in lines[0] and missing in lines[0]


def test_the_python_api_imports_no_torch_on_the_default_path(data: Path, tmp_path: Path) -> None:
    """With torch installed (this environment), the default path still never imports it."""
    code = ("import sys, repsample\n"
            f"repsample.select({str(data)!r}, {str(tmp_path / 'out')!r}, per_class=4, "
            f"cache={str(tmp_path / 'c.db')!r}, report=False)\n"
            f"print(sorted(m for m in {HIDDEN!r} if m in sys.modules))\n")
    env = {**os.environ, "REPSAMPLE_MODELS_DIR": str(tmp_path / "models")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
