"""Shared fixtures: real images generated with PIL into temporary split/class trees, and a small
real disk to fill."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

# CI replays the same examples on every run (a red CI names a bug, not a new draw); a developer's
# run draws new ones each time, which is how property tests find what fixtures miss.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parent.parent / "examples" / "fashion"
# A real network, untrained: fast, and enough where a test is about mechanics, not quality.
FAST_MODEL = {"model": "resnet18", "weights": "random"}
FAST_ARGS = ["--model", "resnet18", "--weights", "random"]


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48), mode: str = "RGB",
               fmt: str | None = None) -> Path:
    """A small real image with structure (gradient, a blob, noise) that differs per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    blob = rng.uniform(0, 1, 2) * (w, h)
    dist = np.hypot(xx - blob[0], yy - blob[1])
    arr = base[None, None, :] * (xx[..., None] / w) + 200 * np.exp(-dist / 10)[..., None]
    arr = np.clip(arr + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


TreeFactory = Callable[..., Path]


@pytest.fixture(scope="session", autouse=True)
def user_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported models go to one folder per test session, never to the real user cache (the
    CLI's subprocesses inherit it): exported once, reused by every test, as for a user."""
    folder = tmp_path_factory.mktemp("models")
    before = os.environ.get("REPSAMPLE_MODELS_DIR")
    os.environ["REPSAMPLE_MODELS_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["REPSAMPLE_MODELS_DIR"]
    else:
        os.environ["REPSAMPLE_MODELS_DIR"] = before


@pytest.fixture
def make_tree(tmp_path: Path) -> TreeFactory:
    """make_tree({"train/Sick birds": 12, "test/Healthy": 5}) -> root with that many images each."""

    def factory(counts: dict[str, int], root: Path | None = None, ext: str = ".jpg",
                seed: int = 0) -> Path:
        root = root or tmp_path / "data"
        for g, (group, n) in enumerate(sorted(counts.items())):
            for i in range(n):
                make_image(root / group / f"img_{i:03d}{ext}", seed=seed + 1000 * g + i)
        return root

    return factory


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "embeddings.sqlite"


@pytest.fixture
def example_tree(tmp_path: Path) -> Path:
    """A copy of two example groups (real Fashion-MNIST images), small enough for the real model."""
    root = tmp_path / "fashion"
    for group in ("train/Ankle boot", "train/T-shirt top"):
        shutil.copytree(EXAMPLE / group, root / group)
    return root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1.5 MiB tmpfs (CI runs as root); skipped where mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
