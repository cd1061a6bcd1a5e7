"""The ONNX Runtime backend: the model exported once per user, cached on disk, run by ONNX Runtime.

The exported file is named by a hash of the model key (model, weights identity, preprocessing)
and the exporter's versions (read from package metadata: naming it imports no torch), so
changed weights never reuse a stale export. Every export is checked against the eager model
once, before it is kept: beyond 1e-4 relative error it is dropped and the caller falls back to
eager PyTorch, so both backends share one embedding cache key. A kept export is loaded by ONNX
Runtime alone: later runs import neither torch nor the model's package.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repsample.models.base import ONNX_OPSET, replacing

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

OPSET = ONNX_OPSET
EXPORT_VERSION = 1  # bump when the export recipe changes
GRAPH_VERSION = 1  # bump when a graph built without PyTorch (ModelSpec.graph) changes
TOLERANCE = 1e-4  # max relative (L2, per row) difference from eager PyTorch


def export_name(key: str, built: bool = False) -> str:
    """The file name of a model's ONNX file: by its key, and by what made it (a graph built from
    the weights without PyTorch, or PyTorch's exporter of this version)."""
    from importlib.metadata import version

    maker = f"built-v{GRAPH_VERSION}" if built else f"torch-{version('torch')}"
    ident = f"{key}|opset{OPSET}|{maker}|export-v{EXPORT_VERSION}"
    model = key.split("|", 1)[0]
    return f"{model}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.onnx"


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest per-row ||ours - reference|| / ||reference||."""
    diff = np.linalg.norm(ours.astype(np.float64) - reference, axis=1)
    return float(np.max(diff / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)))


def _probe(size: tuple[int, int]) -> np.ndarray:
    """A fixed batch in the range of normalised pixels, for checking an export."""
    w, h = size
    return np.random.default_rng(0).uniform(-2, 2, (2, 3, h, w)).astype(np.float32)


class OnnxRunner:
    """An ONNX Runtime session on the CPU, one thread per core, no busy-waiting.

    output: the graph output taken (None: the first). A feature map (N, C, H, W) or tokens
    (N, T, D) are averaged to one vector per image; a model exported with a fixed batch size is
    fed batches of that size.
    """

    name = "onnx"

    def __init__(self, path: Path, threads: int, output: str | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning threads would steal the cores the decoding workers need between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        batch = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.outputs = [output] if output else None
        self.path = path  # int8 and bf16 models are derived from this file

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        n = self.fixed_batch
        if n is None or len(batch) == n:
            out: Any = self.session.run(self.outputs, {self.input: batch})[0]
            return pooled(out)
        parts = []
        for start in range(0, len(batch), n):
            part = batch[start : start + n]
            padded = np.concatenate([part, np.zeros((n - len(part), *part.shape[1:]), np.float32)])
            parts.append(self(padded)[: len(part)])
        return np.concatenate(parts) if parts else np.empty((0, 0), np.float32)


def pooled(out: np.ndarray) -> np.ndarray:
    """One float32 vector per image: a feature map averaged over space, tokens over tokens."""
    out = np.asarray(out, np.float32)
    if out.ndim == 4:
        out = out.mean(axis=(2, 3))
    elif out.ndim == 3:
        out = out.mean(axis=1)
    return np.ascontiguousarray(out, np.float32)


def export(module: nn.Module, size: tuple[int, int], path: Path) -> None:
    """Write ``module`` as ONNX (batch dimension dynamic) to ``path``, atomically."""
    import torch

    example = torch.from_numpy(_probe(size)[:1])
    # The TorchScript exporter needs no extra packages; its deprecation chatter is not ours.
    with (replacing(path) as tmp, warnings.catch_warnings(),
          contextlib.redirect_stdout(io.StringIO())):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), tmp, input_names=["pixels"], output_names=["embedding"],
            dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )


def load_export(path: Path, threads: int) -> OnnxRunner | None:
    """A runner for an export (or a model derived from one) made and checked earlier; None when
    there is none. A file that ONNX Runtime cannot load (truncated, damaged) is removed, so that
    it is made again."""
    if not path.is_file():
        return None
    try:
        return OnnxRunner(path, threads)
    except Exception as exc:  # onnxruntime raises its own types for a damaged file
        logger.warning("cached ONNX export %s unreadable (%s); exporting again", path, exc)
        path.unlink(missing_ok=True)
        return None


def export_checked(
    module: nn.Module, size: tuple[int, int], path: Path, threads: int
) -> OnnxRunner | None:
    """Export ``module`` to ``path`` and keep it only if it matches eager PyTorch within
    TOLERANCE; None (and a warning) when it does not or cannot be made."""
    import torch

    try:
        logger.info("exporting the model to ONNX (once per model): %s", path)
        export(module, size, path)
        runner = OnnxRunner(path, threads)
    except Exception as exc:  # exporter and runtime raise many types; eager still works
        logger.warning("ONNX backend unavailable (%s: %s); using eager PyTorch", type(exc).__name__, exc)
        return None
    probe = _probe(size)
    with torch.inference_mode():
        reference = module(torch.from_numpy(probe)).float().numpy()
    error = relative_error(runner(probe), reference)
    if error > TOLERANCE:
        path.unlink(missing_ok=True)
        logger.warning("ONNX export differs from eager PyTorch by %.2g; using eager PyTorch", error)
        return None
    return runner
