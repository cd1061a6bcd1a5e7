"""Inference backends: what turns a preprocessed batch into embeddings.

``torch`` runs the model eagerly (CPU: channels_last; CUDA: fp16 autocast, channels_last).
``onnx`` exports the model once per user to ONNX, keeps the file in the user's cache folder
(embed.user_models_dir) and runs it with ONNX Runtime: several times faster than eager PyTorch on
CPU, embeddings equal within 1e-4 (checked at export, so the cache key can stay the eager
model's). ``auto`` picks onnx on the CPU (onnxruntime is a base dependency; where it cannot be
imported, torch, with a warning).

Precision picks the runtime where it must: int8 runs the quantized ONNX export in ONNX Runtime
(backends/quantize.py), bf16 on the CPU runs the ONNX export in OpenVINO (backends/openvino.py),
fp16 and bf16 on CUDA are eager PyTorch autocast.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Protocol

import numpy as np

from repsample.errors import UsageError, mention, missing_extra
from repsample.params import check_choice

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
    check_choice("backend", requested, BACKENDS)
    on_cpu = device == "cpu"
    if requested == "auto":
        if on_cpu and not onnx_available():
            logger.warning("onnxruntime is not importable: embedding with eager PyTorch, several times "
                           "slower on the CPU; reinstall repsample (pip install repsample) to get it back")
        return "onnx" if on_cpu and onnx_available() else "torch"
    if requested == "onnx":
        if not on_cpu:
            raise UsageError(f"onnx runs on the CPU, not on {device}; choose {mention('backend')} torch "
                             f"or {mention('device')} cpu",
                             option="backend")
        if not onnx_available():
            raise missing_extra("onnxruntime", "onnx")
    return requested


def check_precision(precision: str, device: str, backend: str = "auto") -> None:
    """Refuse a precision the device or the requested backend cannot run, in one line."""
    check_choice("precision", precision, PRECISIONS)
    cuda = device.startswith("cuda")
    if precision == "fp16" and not cuda:
        raise UsageError("fp16 runs on CUDA only; on the CPU use fp32, int8 or bf16", option="precision")
    if precision == "int8":
        if cuda:
            raise UsageError(f"int8 runs on the CPU (ONNX Runtime); choose {mention('device')} cpu",
                             option="precision")
        if backend == "torch":
            raise UsageError(f"int8 runs through ONNX Runtime, not {mention('backend')} torch",
                             option="precision")
        if not onnx_available():
            raise missing_extra("onnxruntime", "onnx")
    if precision == "bf16" and not cuda and backend == "torch":
        raise UsageError(f"bf16 on the CPU runs through OpenVINO, not {mention('backend')} torch",
                         option="precision")
