"""What an embedding model is: how to build it, how to feed it, how to name it (the cache key).

The models by name are in catalogue.py."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from torch import nn

ONNX_PREFIX = "onnx:"  # --model onnx:PATH runs a user's ONNX image encoder
ONNX_OPSET = 17  # of every ONNX file repsample makes: exported with PyTorch or built (ModelSpec.graph)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[str]:
    """A temporary file beside ``path`` for the block to write; it becomes ``path`` when the block
    ends and is removed when it fails: a killed write leaves a temporary file, never a truncated
    model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Resize to a fixed size, scale, normalise. The resize stretches (aspect ratio not kept, as
    the original method did) or, with crop, fills the size and cuts the centre (CLIP's way)."""

    size: tuple[int, int]  # (width, height)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: str = "bilinear"
    draft: bool = True  # let JPEGs decode at a reduced DCT scale that is still >= size
    crop: bool = False

    @property
    def identity(self) -> str:
        """Changes whenever the pixels reaching the model would change."""
        w, h = self.size
        draft = "-draft" if self.draft else ""
        crop = "-crop" if self.crop else ""  # absent from stretching keys: theirs stay as they were
        return f"resize{w}x{h}-{self.resample}{draft}{crop}-mean{self.mean}-std{self.std}"

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.size if self.draft else None

    def __call__(self, img: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
        """The model's input for an 8-bit RGB image: (3, height, width) float32, written into
        ``out`` when given (a row of a batch)."""
        resample = getattr(Image.Resampling, self.resample.upper())
        box = self._centre(img.size) if self.crop else None
        levels = np.asarray(img.resize(self.size, resample, box))
        if out is None:
            out = np.empty((3, *levels.shape[:2]), np.float32)  # HWC -> CHW
        for channel in range(3):
            np.take(self._normalised[channel], levels[..., channel], out=out[channel])
        return out

    @cached_property
    def _normalised(self) -> np.ndarray:
        """(3, 256): each channel's value for each 8-bit level, ``(level / 255 - mean) / std`` in
        float32, the arithmetic of a per-pixel computation, so a lookup gives the same bits at
        a third of its cost (a tenth of the decoding workers' time on photographs)."""
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        scaled = np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0)
        return np.ascontiguousarray(((scaled - mean) / std).T)

    def _centre(self, source: tuple[int, int]) -> tuple[float, float, float, float]:
        """The largest centred region of the source with the target's aspect ratio: resizing it
        is resizing the shorter side to the target and cutting the centre, in one step."""
        (sw, sh), (w, h) = source, self.size
        scale = min(sw / w, sh / h)
        cw, ch = w * scale, h * scale
        # Clamped: the product can pass the source by a rounding error, which PIL refuses.
        return (max(0.0, (sw - cw) / 2), max(0.0, (sh - ch) / 2), min(sw, (sw + cw) / 2),
                min(sh, (sh + ch) / 2))


@dataclass(frozen=True)
class OnnxFile:
    """A ready ONNX encoder: run as it is by ONNX Runtime, no torch. output: the graph output
    taken (None: the first); a feature map (N, C, H, W) or tokens (N, T, D) are averaged."""

    path: Path
    output: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registered embedding model.

    build(weights) returns a module mapping a (N, 3, H, W) float batch to (N, dim) embeddings;
    weights is "default" (pretrained), "random" (untrained, seeded) or a local state_dict path.
    """

    name: str
    summary: str
    dim: int
    preprocess: Preprocess
    build: Callable[[str], nn.Module]
    default_weights: str  # names the pretrained weights in the cache key
    offline: bool  # whether the default weights are available without network
    revision: int = 1  # bumped when build() changes its output: cached vectors of older ones go stale
    onnx: OnnxFile | None = None  # set: build is not used, ONNX Runtime runs this file
    extra: str = "torch"  # the pip extra that brings what build() imports
    graph: Callable[[str, Path], None] | None = None
    """Writes the model's ONNX file for pretrained or file weights without PyTorch (the default
    CPU path); None: the file is exported from build() with PyTorch."""
    identity: str | None = None
    """Names the model in the cache key instead of ``name``: a file's content hash, so that
    moving the file keeps its vectors."""


def weights_identity(spec: ModelSpec, weights: str) -> str:
    """A stable name for the weights, part of the embedding cache key."""
    if weights == "default":
        return spec.default_weights
    if weights == "random":
        return "random-init-seed0"
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    return f"file-sha256-{digest}"


def model_key(spec: ModelSpec, weights: str) -> str:
    """Everything that decides an image's embedding, apart from the image itself."""
    name = spec.identity or spec.name
    return f"{name}|r{spec.revision}|{weights_identity(spec, weights)}|{spec.preprocess.identity}"
