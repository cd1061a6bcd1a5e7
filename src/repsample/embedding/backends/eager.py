"""The eager PyTorch backend: the reference, and the GPU path."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from repsample.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

EAGER_PRECISIONS = ("fp32", "fp16", "bf16")
AUTOCAST = {"fp16": "float16", "bf16": "bfloat16"}


def check_eager_precision(precision: str, device: str) -> None:
    """fp16 and bf16 (autocast) are CUDA-only opt-ins for eager PyTorch.

    Neither is the default because on the built-in models they move images' 10 nearest neighbours
    (measured on Fashion-MNIST images: EfficientNet-Lite0 in fp16 kept the same 10-NN set for 80%
    of images); tests/embedding/test_backends.py holds the default precision on every device to that bar.
    """
    if precision not in EAGER_PRECISIONS or (precision != "fp32" and not device.startswith("cuda")):
        raise UsageError(f"{precision} runs in eager PyTorch on "
                         f"{'CUDA only' if precision in AUTOCAST else 'no device'}; "
                         "choose fp32 or another backend", option="precision")


class TorchRunner:
    """A module on one device, fed channels_last batches; optional fp16/bf16 autocast on CUDA."""

    name = "torch"

    def __init__(self, module: nn.Module, device: str, precision: str = "fp32") -> None:
        import torch

        check_eager_precision(precision, device)
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
        if self.precision in AUTOCAST:
            return torch.autocast("cuda", dtype=getattr(torch, AUTOCAST[self.precision]))
        # cuDNN convolutions default to TF32 (~1e-3 relative error): keep fp32 really fp32,
        # scoped to this call rather than flipped globally.
        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
