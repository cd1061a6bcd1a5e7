"""int8: the fp32 ONNX export, statically quantized by ONNX Runtime, cached beside it.

Why static and why this calibration set:
- Static quantization fixes every activation's int8 scale once, from a calibration set, and
  runs the convolutions as integer (VNNI) kernels: 2.6x fp32's throughput on efficientnet-lite0
  here. Dynamic quantization computes activation scales per batch, so an image's vector would
  depend on the other images in its batch; and ONNX Runtime's ConvInteger ran at 0.36x fp32 with
  a mean cosine to fp32 of 0.68 (static: 0.98). bench/precision.py measures both.
- The calibration set is FIXED and generated here, deterministically, not drawn from the user's
  data: scales calibrated on the data would make an image's vector depend on which dataset it
  came with, and the embedding cache is shared across datasets by content hash. Nothing is
  shipped: CALIBRATION_IMAGES seeded images (smooth colour fields, shapes, edges, fine texture,
  some grey, some dark, some inverted) cover the value ranges photos and scans reach, and they
  go through the model's own preprocessing. Calibrating on the data itself bought nothing
  measurable: on Fashion-MNIST images, mean cosine to fp32 0.980 calibrated on 48 of its own
  images against 0.979 on this set; excluding the stem and head convolutions, or percentile
  calibration, moved it by under 0.001 (so the recipe stays the plain one).
- Calibration is MinMax with per-channel int8 weights (QDQ format): with a calibration set
  that is not the data, clipping by percentiles would cut values the real images need.
- The form follows the CPU (``int8_form``): uint8 activations x int8 weights (u8s8) where
  ONNX Runtime's kernels add those products exactly (x86 with VNNI, Arm); on x86 without VNNI
  the full convolutions take uint8 weights (u8full), as 7-bit weights (reduce_range) drifted
  further (mean cosine 0.955) and all-uint8 ran at a fifth of fp32 (bench/int8_forms.py). The
  form is in the model's file name and the cache key: a different graph gives other vectors.
Every int8 model is checked against fp32 on calibration images each time it is loaded, on the
CPU that runs it, and refused below MIN_COSINE.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from repsample.embedding.backends.onnx import OnnxRunner, load_export
from repsample.errors import RepsampleError, UsageError, mention, missing_extra
from repsample.models.base import Preprocess

logger = logging.getLogger(__name__)

QUANTIZE_VERSION = 1  # bump when the recipe or the calibration set changes
CALIBRATION_IMAGES = 48
CALIBRATION_SEED = 20261128
MIN_COSINE = 0.97  # a quantized model whose mean cosine to fp32 falls below this is refused
METHODS = ("static", "dynamic")
X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})  # platform.machine() spellings


@dataclass(frozen=True)
class Int8Form:
    """How a static int8 model holds its numbers; ``name`` is in its file name and cache key.

    activations, weights: "uint8", "int8", or "int7" (int8 weights kept to 7 bits: ONNX Runtime's
    reduce_range). full_convs: what the weights of the full (not depthwise) convolutions are
    instead ("": the same as the others).
    """

    name: str
    activations: str = "uint8"
    weights: str = "int8"
    full_convs: str = ""

    @property
    def precision(self) -> str:
        """The precision's name in cache keys: u8s8 keeps "int8", its name before forms existed."""
        return "int8" if self.name == "u8s8" else f"int8-{self.name}"


U8S8 = Int8Form("u8s8")  # the form every CPU used before forms were chosen: its key is plain "int8"
U8FULL = Int8Form("u8full", full_convs="uint8")


def cpu_flags() -> frozenset[str]:
    """This CPU's features as CPUID reports them to this process, as ONNX Runtime's kernels see
    them (numpy's names, lower case: avx2, avx512vnni); empty where numpy cannot say."""
    try:  # numpy >= 2 keeps it here (numpy.show_runtime reads it too)
        features = importlib.import_module("numpy._core._multiarray_umath").__cpu_features__
    except (ImportError, AttributeError):  # numpy moved it: int8_form takes the safe form
        return frozenset()
    return frozenset(name.lower() for name, present in features.items() if present)


def int8_form(flags: frozenset[str], machine: str) -> Int8Form:
    """The form whose integer sums ONNX Runtime's kernels compute exactly on this CPU.

    On x86 without VNNI the uint8 x int8 kernels of full convolutions add pairs of products in
    16 bits (VPMADDUBSW), which saturates: the default model's vectors fell to a mean cosine of
    0.87 to fp32 (bench/int8_forms.py). There those convolutions take uint8 weights, whose kernels
    widen to 16 bits first; depthwise kernels widen in either form. Flags unknown (and AVX-VNNI
    without AVX-512, which numpy does not name): the form that is exact everywhere.
    """
    return U8FULL if machine.lower() in X86 and "avx512vnni" not in flags else U8S8


def this_cpu_int8_form() -> Int8Form:
    return int8_form(cpu_flags(), platform.machine())


def calibration_image(index: int, size: int = 256) -> Image.Image:
    """One seeded synthetic image: a smooth colour field, a few shapes and lines, fine texture."""
    rng = np.random.default_rng([CALIBRATION_SEED, index])
    cells = int(rng.integers(2, 9))
    field = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
    img = Image.fromarray(field, "RGB").resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 10))):
        box = np.sort(rng.integers(0, size, (2, 2)), axis=0).ravel().tolist()
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.line(box, fill=colour, width=int(rng.integers(1, 8)))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3))))
    pixels = np.asarray(img, np.float32)
    pixels += rng.normal(0, rng.uniform(0, 25), pixels.shape)  # fine texture, like sensor noise
    kind = index % 6  # a share of grey, dark and inverted images: scans, night shots, negatives
    if kind == 3:
        pixels = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2)
    elif kind == 4:
        pixels *= 0.25
    elif kind == 5:
        pixels = 255 - pixels
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def calibration_batch(preprocess: Preprocess, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """The fixed calibration set through ``preprocess``: (count, 3, H, W) float32."""
    return np.stack([preprocess(calibration_image(i)) for i in range(count)])


def quantized_path(fp32_path: Path, method: str = "static", form: Int8Form = U8S8) -> Path:
    """The int8 model derived from ``fp32_path``, named by the recipe and ONNX Runtime's version."""
    import onnxruntime

    recipe = method if form == U8S8 or method != "static" else f"{method}-{form!r}"
    ident = f"{fp32_path.name}|{recipe}|v{QUANTIZE_VERSION}|ort-{onnxruntime.__version__}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return fp32_path.with_name(f"{fp32_path.stem}-int8-{digest}.onnx")


class _Batches:
    """The calibration set as ONNX Runtime's CalibrationDataReader wants it: one image per call."""

    def __init__(self, name: str, batch: np.ndarray) -> None:
        self.items: Iterator[dict[str, np.ndarray]] = iter({name: b[None]} for b in batch)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def quantize(fp32_path: Path, preprocess: Preprocess, out: Path, method: str = "static",
             form: Int8Form = U8S8) -> None:
    """Write the int8 model of ``fp32_path`` to ``out`` atomically (static in ``form``, or dynamic)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise RepsampleError(f"unknown quantization {method!r}; choose one of: {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".quantize-") as tmp:
        prepared, result = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # fold, shape-infer: better int8 graph
        if method == "dynamic":
            quantize_dynamic(prepared, result, weight_type=QuantType.QUInt8)  # ConvInteger: uint8
        else:
            name = OnnxRunner(fp32_path, 1).input
            quantize_static(
                prepared, result, _Batches(name, calibration_batch(preprocess)),
                quant_format=QuantFormat.QDQ, per_channel=True,
                calibrate_method=CalibrationMethod.MinMax, **_form_options(form, prepared),
            )
        os.replace(result, out)  # a killed run leaves a temp folder's debris, never a half model


def _form_options(form: Int8Form, prepared: Path) -> dict[str, Any]:
    """quantize_static's types for ``form``; the full convolutions' as per-tensor overrides."""
    from onnxruntime.quantization import QuantType

    types = {"uint8": (QuantType.QUInt8, False), "int8": (QuantType.QInt8, False),
             "int7": (QuantType.QInt8, True)}  # (type, reduce_range)
    options: dict[str, Any] = {"activation_type": types[form.activations][0],
                               "weight_type": types[form.weights][0], "reduce_range": types[form.weights][1]}
    if form.full_convs:
        qtype, seven = types[form.full_convs]
        override = [{"axis": 0, "quant_type": qtype, "reduce_range": seven}]
        overrides = {weights: override for weights in _full_conv_weights(prepared)}
        # A channel whose weights batch norm folded to ~1e-8 gets so small a uint8 scale that its
        # bias overflows int32 and is clipped (ONNX Runtime widens such scales for int8 weights
        # only). Alive channels span 1e-3 and more; this floor left the mean cosine to fp32 as it was.
        options["extra_options"] = {"TensorQuantOverrides": overrides, "MinimumRealRange": 1e-4}
    return options


def _full_conv_weights(path: Path) -> list[str]:
    """The weights of the convolutions that are not depthwise (group 1)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    groups = {n.input[1]: next((a.i for a in n.attribute if a.name == "group"), 1)
              for n in model.graph.node if n.op_type == "Conv"}
    return [w for w, g in groups.items() if g == 1]


def mean_cosine(ours: np.ndarray, reference: np.ndarray) -> float:
    num = np.sum(ours.astype(np.float64) * reference, axis=1)
    den = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-12)))


def _require_sympy() -> None:
    """ONNX Runtime's quantizer infers shapes with sympy, which the base install lacks."""
    try:
        import sympy  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise missing_extra("sympy", "int8", f"{mention('precision')} int8") from None


def load_int8(fp32: OnnxRunner, preprocess: Preprocess, threads: int,
              form: Int8Form = U8S8) -> OnnxRunner:
    """A runner for the int8 model of ``fp32``'s export in ``form`` (quantized now if not cached),
    checked against fp32 on this CPU each time: a form its kernels cannot run exactly is refused."""
    path = quantized_path(fp32.path, "static", form)
    runner = load_export(path, threads)  # None: not made yet, or unreadable (then removed)
    if runner is None:
        logger.info("quantizing %s to int8 (%s): %s", fp32.path.name, form.name, path)
        _require_sympy()
        try:
            quantize(fp32.path, preprocess, path, "static", form)
        except Exception as exc:  # the quantizer raises many types; name it in one line
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise UsageError(f"int8 failed to quantize ({type(exc).__name__}: {exc}); choose fp32",
                             option="precision") from None
        runner = OnnxRunner(path, threads)
    probe = calibration_batch(preprocess, 8)
    cosine = mean_cosine(runner(probe), fp32(probe))
    if cosine < MIN_COSINE:
        raise UsageError(f"int8 ({form.name}) drifts from fp32 on this CPU (mean cosine {cosine:.3f} < "
                         f"{MIN_COSINE}): its kernels do not compute this form exactly; choose fp32",
                         option="precision")
    return runner
