"""A user's ONNX image encoder as a model: ``--model onnx:PATH``.

Its preprocessing comes from the JSON file beside it (clip.onnx -> clip.json), and from the
options input_size, resize, mean and std, which override that file:

    {"input_size": [224, 224], "resize": "crop", "interpolation": "bicubic",
     "mean": [0.481, 0.458, 0.408], "std": [0.269, 0.261, 0.276], "output": "image_embeds"}

input_size (width, height; one number for a square) defaults to the model's fixed input size;
resize to stretch (crop: fill the size, cut the centre); interpolation to bilinear (bicubic with
crop); mean and std to ImageNet's; output to the first graph output of shape (N, D), else the
first output, a feature map (N, C, H, W) or tokens (N, T, D), which is averaged. The cache key
holds the file's content hash, the output and the preprocessing; not where the file lies.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repsample.errors import UsageError, mention
from repsample.fsio import hash_file
from repsample.models.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ONNX_PREFIX,
    ModelSpec,
    OnnxFile,
    Preprocess,
)

if TYPE_CHECKING:
    from torch import nn

SETTINGS = ("input_size", "resize", "interpolation", "mean", "std", "output")
RESIZES = ("stretch", "crop")
INTERPOLATIONS = ("bilinear", "bicubic", "lanczos", "nearest")


def sidecar(model: Path) -> Path:
    """The JSON file of preprocessing settings beside a model file."""
    return model.with_suffix(".json")


def onnx_model(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """The spec of the ONNX file at path; overrides (input_size, resize, mean, std: the
    options' values, None for unset) win over the JSON file beside it."""
    file = Path(path).expanduser().resolve()  # absolute: engine workers elsewhere name it alike
    if not file.is_file():
        raise UsageError(f"{ONNX_PREFIX}{path}: no such file; give onnx:PATH to an ONNX model file",
                         option="model")
    given = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                         for k, v in (overrides or {}).items() if v is not None))
    model_stat = _stat(file)
    external = tuple(_stat(file.parent / name) for name in _read_graph(file, model_stat).external)
    return _spec(file, model_stat, _stat(sidecar(file)), external, given)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


# Both keyed by the files' stats (the model, its JSON, its external weights): a changed file is
# read again, an unchanged one is not (engine workers ask for the spec once per batch).
@functools.lru_cache(maxsize=8)
def _read_graph(file: Path, model_stat: tuple[int, int] | None) -> _Graph:
    return _Graph(file)


@functools.lru_cache(maxsize=8)
def _spec(file: Path, model_stat: tuple[int, int] | None, json_stat: tuple[int, int] | None,
          external_stats: tuple[tuple[int, int] | None, ...],
          given: tuple[tuple[str, Any], ...]) -> ModelSpec:
    settings = _Settings(file, dict(given))
    graph = _read_graph(file, model_stat)
    output = settings.get("output", str) or graph.default_output()
    width, height = settings.size() or graph.input_size() or settings.missing_size()
    graph.check_input_size(width, height)
    crop = settings.choice("resize", RESIZES, "stretch") == "crop"
    preprocess = Preprocess(
        (width, height), settings.triple("mean", IMAGENET_MEAN), settings.triple("std", IMAGENET_STD),
        resample=settings.choice("interpolation", INTERPOLATIONS, "bicubic" if crop else "bilinear"),
        crop=crop)
    dim = graph.dim(output) or _probe_dim(file, output, (width, height))
    # Weights may lie in external data files beside the graph (models over 2 GB): hash those too.
    parts = [hash_file(f) for f in (file, *(file.parent / name for name in graph.external))]
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if len(parts) > 1 else parts[0][:16]
    return ModelSpec(
        name=f"{ONNX_PREFIX}{file}",
        summary=f"user ONNX model {file.name}, {dim}-d",
        dim=dim,
        preprocess=preprocess,
        build=_no_torch_module,
        default_weights="in-file",
        offline=True,
        onnx=OnnxFile(file, output),
        identity=f"onnx-sha256-{digest}-{output}",
    )


def _no_torch_module(weights: str) -> nn.Module:
    raise UsageError("an onnx:PATH model holds its weights and runs in ONNX Runtime; choose "
                     f"{mention('weights')} default and {mention('backend')} auto or onnx",
                     option="weights")


class _Settings:
    """Preprocessing settings: the options given, else the JSON file beside the model. An error
    names the option, or the JSON file and its key."""

    def __init__(self, model: Path, given: dict[str, Any]) -> None:
        self.json = sidecar(model)
        self.given = given
        self.stored: dict[str, Any] = {}
        if self.json.is_file():
            try:
                stored = json.loads(self.json.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise UsageError(f"{self.json}: not readable JSON ({exc})") from None
            if not isinstance(stored, dict) or set(stored) - set(SETTINGS):
                raise UsageError(f"{self.json}: must be an object with keys among "
                                 f"{', '.join(SETTINGS)}")
            self.stored = stored

    def _raw(self, key: str) -> Any:
        return self.given[key] if key in self.given else self.stored.get(key)

    def fail(self, key: str, problem: str) -> UsageError:
        if key in self.given:
            return UsageError(problem, option=key)
        return UsageError(f"{self.json}: {key} {problem}")

    def get(self, key: str, kind: type) -> Any:
        value = self._raw(key)
        if value is not None and not isinstance(value, kind):
            raise self.fail(key, f"must be a {kind.__name__}, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(key) or default
        if value not in choices:
            raise self.fail(key, f"{value!r} is unknown; choose one of: {', '.join(choices)}")
        return str(value)

    def size(self) -> tuple[int, int] | None:
        """(width, height) from 224, "224", "224x160" or [224, 160]."""
        value = self._raw("input_size")
        if value is None:
            return None
        parts = str(value).lower().split("x") if isinstance(value, (str, int)) else list(value)
        try:
            numbers = [int(str(p).strip()) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or min(numbers) < 1:
            raise self.fail("input_size", f"must be WIDTHxHEIGHT or one size, got {value!r}")
        return (numbers[0], numbers[-1])

    def missing_size(self) -> tuple[int, int]:
        raise UsageError(f"the model's input size is not fixed in the file: give {mention('input_size')}, or "
                         f"input_size in {self.json}")

    def triple(self, key: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
        """Three numbers (one per channel) from "a,b,c", [a, b, c] or one number for all."""
        value = self._raw(key)
        if value is None:
            return default
        parts = value.split(",") if isinstance(value, str) else value
        parts = parts if isinstance(parts, (list, tuple)) else [parts]
        try:
            numbers = [float(p) for p in parts]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) not in (1, 3) or (key == "std" and min(numbers) <= 0):
            what = "three positive numbers" if key == "std" else "three numbers"
            raise self.fail(key, f"must be {what} (one per channel), got {value!r}")
        return (numbers[0], numbers[len(numbers) // 2], numbers[-1])


class _Graph:
    """The input and outputs of an ONNX model, read without building a session."""

    def __init__(self, file: Path) -> None:
        import onnx

        try:
            model = onnx.load(str(file), load_external_data=False)
        except Exception as exc:  # protobuf's DecodeError and onnx's own
            raise UsageError(f"{file}: not an ONNX model ({type(exc).__name__}: {exc})",
                             option="model") from None
        self.file = file
        weights = {t.name for t in model.graph.initializer}  # old exports list them as inputs
        inputs = [i for i in model.graph.input if i.name not in weights]
        if len(inputs) != 1:
            raise self._refuse(f"has {len(inputs)} inputs")
        self.input = _shape(inputs[0])
        elem = inputs[0].type.tensor_type.elem_type
        if elem != onnx.TensorProto.FLOAT or len(self.input) != 4 or self.input[1] not in (3, None):
            raise self._refuse(f"takes {onnx.TensorProto.DataType.Name(elem).lower()} of shape "
                               f"{_show(self.input)}")
        self.outputs: dict[str, list[int | None]] = {o.name: _shape(o) for o in model.graph.output}
        self.external = sorted({entry.value for tensor in model.graph.initializer
                                for entry in tensor.external_data if entry.key == "location"})

    def _refuse(self, what: str) -> UsageError:
        return UsageError(f"{self.file} {what}; repsample feeds one float32 image batch of shape "
                          "(N, 3, HEIGHT, WIDTH)", option="model")

    def input_size(self) -> tuple[int, int] | None:
        height, width = self.input[2], self.input[3]
        return (width, height) if width and height else None

    def check_input_size(self, width: int, height: int) -> None:
        fixed = self.input_size()
        if fixed is not None and fixed != (width, height):
            raise UsageError(f"{width}x{height} does not fit {self.file.name}, whose input is "
                             f"{fixed[0]}x{fixed[1]} (width x height)", option="input_size")

    def default_output(self) -> str:
        """The first output of shape (N, D) (an embedding, rather than tokens or a map)."""
        flat = [name for name, shape in self.outputs.items() if len(shape) == 2]
        return flat[0] if flat else next(iter(self.outputs))

    def dim(self, output: str) -> int | None:
        """The embedding's width, where the file fixes it; None when only running tells."""
        if output not in self.outputs:
            raise UsageError(f"{self.file.name} has no output {output!r}; it has: "
                             f"{', '.join(self.outputs)}", option="model")
        shape = self.outputs[output]
        if shape and len(shape) not in (2, 3, 4):
            raise UsageError(f"output {output!r} of {self.file.name} has shape {_show(shape)}; "
                             "repsample takes (N, D), a feature map (N, C, H, W) or tokens (N, T, D)",
                             option="model")
        return shape[2] if len(shape) == 3 else shape[1] if shape else None


def _shape(value: Any) -> list[int | None]:
    """A value's dimensions, None where symbolic; [] when the file does not say."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]


def _show(shape: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _probe_dim(file: Path, output: str, size: tuple[int, int]) -> int:
    """Run one blank image through the model: what its output's width is."""
    import numpy as np
    import onnxruntime as ort

    width, height = size
    try:
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        blank = np.zeros((1, 3, height, width), np.float32)
        shape = session.run([output], {session.get_inputs()[0].name: blank})[0].shape
    except Exception as exc:  # onnxruntime raises its own types
        raise UsageError(f"{file.name} failed on a {width}x{height} image ({type(exc).__name__}: "
                         f"{exc}); check {mention('input_size')}", option="model") from None
    return int(shape[2] if len(shape) == 3 else shape[1])
