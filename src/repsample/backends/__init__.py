"""Inference backends: what turns a preprocessed batch into embeddings.

``torch`` runs the model eagerly (CPU: channels_last; CUDA: fp16 autocast, channels_last).
``onnx`` exports the model once to ONNX, caches the file next to the embedding cache and runs
it with ONNX Runtime: several times faster than eager PyTorch on CPU, embeddings equal within
1e-4 (checked at export, so the cache key can stay the eager model's). ``auto`` picks onnx on
the CPU (onnxruntime is a base dependency; where it cannot be imported, torch, with a warning).

Precision picks the runtime where it must: int8 runs the quantized ONNX export in ONNX Runtime
(backends/quantize.py), bf16 on the CPU runs the ONNX export in OpenVINO (backends/openvino.py),
fp16 and bf16 on CUDA are eager PyTorch autocast.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Protocol

import numpy as np

from repsample.errors import RepsampleError, missing_extra

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("fp32", "int8", "bf16", "fp16")


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
        if on_cpu and not onnx_available():
            logger.warning("onnxruntime is not importable: embedding with eager PyTorch, several times "
                           "slower on the CPU; reinstall repsample (pip install repsample) to get it back")
        return "onnx" if on_cpu and onnx_available() else "torch"
    if requested == "onnx":
        if not on_cpu:
            raise RepsampleError(
                f"--backend onnx runs on the CPU, not on {device}; use --backend torch or --device cpu"
            )
        if not onnx_available():
            raise missing_extra("onnxruntime", "onnx")
    return requested


def check_precision(precision: str, device: str, backend: str = "auto") -> None:
    """Refuse a precision the device or the requested backend cannot run, in one line."""
    if precision not in PRECISIONS:
        raise RepsampleError(f"unknown --precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    cuda = device.startswith("cuda")
    if precision == "fp16" and not cuda:
        raise RepsampleError("--precision fp16 runs on CUDA only; on the CPU use fp32, int8 or bf16")
    if precision == "int8":
        if cuda:
            raise RepsampleError("--precision int8 runs on the CPU (ONNX Runtime); use --device cpu")
        if backend == "torch":
            raise RepsampleError("--precision int8 runs through ONNX Runtime; drop --backend torch")
        if not onnx_available():
            raise missing_extra("onnxruntime", "onnx")
    if precision == "bf16" and not cuda and backend == "torch":
        raise RepsampleError("--precision bf16 on the CPU runs through OpenVINO; drop --backend torch")
