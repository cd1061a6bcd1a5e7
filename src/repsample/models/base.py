"""What a registered embedding model is: how to build it, how to feed it, how to name it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from repsample.registry import Registry

if TYPE_CHECKING:
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Resize to a fixed size (aspect ratio not kept, as the original method did), scale, normalise."""

    size: tuple[int, int]  # (width, height)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: str = "bilinear"
    draft: bool = True  # let JPEGs decode at a reduced DCT scale that is still >= size

    @property
    def identity(self) -> str:
        """Changes whenever the pixels reaching the model would change."""
        w, h = self.size
        draft = "-draft" if self.draft else ""
        return f"resize{w}x{h}-{self.resample}{draft}-mean{self.mean}-std{self.std}"

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.size if self.draft else None

    def __call__(self, img: Image.Image) -> np.ndarray:
        resample = getattr(Image.Resampling, self.resample.upper())
        pixels = np.asarray(img.resize(self.size, resample), dtype=np.float32) / np.float32(255.0)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))  # HWC -> CHW


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


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.register(spec.name, spec)


def get_model(name: str) -> ModelSpec:
    return MODELS.get(name)


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


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
    return f"{spec.name}|r{spec.revision}|{weights_identity(spec, weights)}|{spec.preprocess.identity}"
