"""bf16 on the CPU: the fp32 ONNX export compiled by OpenVINO with bf16 inference precision.

ONNX Runtime's CPU provider has no bf16 convolutions; OpenVINO runs them on CPUs with native bf16
(AVX512_BF16 or AMX), which it reports as the BF16 optimization capability. Without it OpenVINO
would emulate bf16 slowly or silently stay in fp32, so such a CPU is refused in one line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from repsample.errors import UsageError, missing_extra


class OpenVinoRunner:
    """An OpenVINO CPU compile of an ONNX model in bf16, one stream, ``threads`` threads."""

    name = "openvino"

    def __init__(self, path: Path, threads: int) -> None:
        if importlib.util.find_spec("openvino") is None:
            raise missing_extra("openvino", "openvino")
        import openvino

        core = openvino.Core()
        if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise UsageError("bf16 needs a CPU with native bf16 (avx512_bf16 or AMX); this one has "
                             "none: choose fp32 or int8", option="precision")
        self.compiled: Any = core.compile_model(str(path), "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        })
        self.request: Any = self.compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.request.infer({0: np.ascontiguousarray(batch, np.float32)})
        return np.ascontiguousarray(out[self.compiled.output(0)], np.float32)
