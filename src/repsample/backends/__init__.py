"""Inference backends: what turns a preprocessed batch into embeddings.

``torch`` runs the model eagerly (CPU: channels_last; CUDA: fp16 autocast, channels_last).
``onnx`` exports the model once to ONNX, caches the file next to the embedding cache and runs
it with ONNX Runtime: several times faster than eager PyTorch on CPU, embeddings equal within
1e-4 (checked at export, so the cache key can stay the eager model's). ``auto`` picks onnx on
CPU where onnxruntime is installed, torch otherwise.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np

from repsample.errors import RepsampleError, missing_extra

BACKENDS = ("auto", "torch", "onnx")


class Runner(Protocol):
    """A loaded model: (N, 3, H, W) float32 batch -> (N, dim) float32 embeddings."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def choose_backend(requested: str, device: str) -> str:
    """The backend to use for ``requested`` (auto, torch or onnx) on ``device``."""
    if requested not in BACKENDS:
        raise RepsampleError(f"unknown --backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    on_cpu = device == "cpu"
    if requested == "auto":
        return "onnx" if on_cpu and onnx_available() else "torch"
    if requested == "onnx":
        if not on_cpu:
            raise RepsampleError(
                f"--backend onnx runs on the CPU, not on {device}; use --backend torch or --device cpu"
            )
        if not onnx_available():
            raise missing_extra("onnxruntime", "onnx")
    return requested
