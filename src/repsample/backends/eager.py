"""The eager PyTorch backend: the reference, and the GPU path."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from repsample.errors import RepsampleError

if TYPE_CHECKING:
    from torch import nn

PRECISIONS = ("fp32", "fp16")


def check_precision(precision: str, device: str) -> None:
    """fp16 (autocast) is a CUDA-only opt-in.

    It is not the default because on the built-in models it moves images' 10 nearest neighbours
    (measured on Fashion-MNIST images: EfficientNet-Lite0 in fp16 kept the same 10-NN set for 80%
    of images); tests/test_backend.py holds the default precision on every device to that bar.
    """
    if precision not in PRECISIONS:
        raise RepsampleError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision == "fp16" and not device.startswith("cuda"):
        raise RepsampleError("fp16 runs on CUDA only; use precision fp32 on the CPU")


class TorchRunner:
    """A module on one device, fed channels_last batches; optional fp16 autocast on CUDA."""

    name = "torch"

    def __init__(self, module: nn.Module, device: str, precision: str = "fp32") -> None:
        import torch

        check_precision(precision, device)
        self.device = device
        self.precision = precision
        # channels_last: faster convolutions on CPU (oneDNN) and on tensor cores.
        self.module = module.to(device).to(memory_format=torch.channels_last)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        cuda = self.device.startswith("cuda")
        x = torch.from_numpy(batch)
        if cuda:
            x = x.pin_memory()  # page-locked, so the copy to the GPU below runs asynchronously
        x = x.to(self.device, non_blocking=cuda).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._precision_scope(cuda):
            out = self.module(x)
        return np.ascontiguousarray(out.float().cpu().numpy(), np.float32)

    def _precision_scope(self, cuda: bool) -> contextlib.AbstractContextManager[object]:
        import torch

        if not cuda:
            return contextlib.nullcontext()
        if self.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        # cuDNN convolutions default to TF32 (~1e-3 relative error): keep fp32 really fp32,
        # scoped to this call rather than flipped globally.
        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
