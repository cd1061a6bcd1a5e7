"""Embed: decode in a pool of threads, run the model in batches, fill the cache."""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import numpy as np

from repsample.cache import ContentCache, default_cache_path
from repsample.embedding.backends import BACKENDS, Runner, check_precision, choose_backend
from repsample.embedding.backends.eager import TorchRunner
from repsample.embedding.backends.onnx import OnnxRunner, export_checked, export_name, load_export
from repsample.embedding.backends.quantize import load_int8, this_cpu_int8_form
from repsample.embedding.decode import DecodeError, decode_sized, decode_workers
from repsample.embedding.descriptor import DESCRIPTOR_KEY, SOURCE_SIZE, describe_image
from repsample.embedding.fingerprint import Fingerprint, fingerprint
from repsample.embedding.quality import QUALITY_KEY, measure_image
from repsample.errors import RepsampleError, UsageError, mention, require_torch
from repsample.inputs.folder import ImageFile
from repsample.models import ModelSpec, get_model, model_key
from repsample.models.base import Preprocess
from repsample.progress import Progress, SilentProgress, cpu_threads, timed

logger = logging.getLogger(__name__)


def no_cuda_possible() -> bool:
    """True where no CUDA device can exist, known without importing torch: no NVIDIA driver on
    Linux, and macOS (no CUDA there at all). Elsewhere only torch can tell."""
    if sys.platform == "darwin":
        return True
    if sys.platform.startswith("linux"):
        return not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists())
    return False


def resolve_device(device: str) -> str:
    if device == "cpu" or (device == "auto" and no_cuda_possible()):
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "auto":
            return "cpu"  # a GPU is only used through PyTorch
        require_torch(f"{mention('device')} {device}")
        raise

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"{device} asked for, but torch sees no CUDA GPU; choose cpu", option="device")
    return device


def user_models_dir() -> Path:
    """Where exported models are kept: once per user and model, whatever cache a run uses.
    REPSAMPLE_MODELS_DIR overrides it."""
    override = os.environ.get("REPSAMPLE_MODELS_DIR")
    return Path(override) if override else default_cache_path().parent / "models"


class Embedder:
    """A model loaded once, on one device and backend, turning preprocessed batches into vectors.

    backend: "auto" (ONNX Runtime on CPU where installed, else eager PyTorch), "torch" or "onnx".
    models_dir: where exported models are kept; None: the user's folder (``user_models_dir``).
    precision: "fp32"; "int8" (CPU, the statically quantized ONNX export); "bf16" (CPU through
    OpenVINO, CUDA through autocast); "fp16" (CUDA autocast). Reduced precisions move nearest
    neighbours (docs/benchmarks.md), so they are opt-in.
    The cache key is the model's, plus "|<precision>" for any but fp32, so vectors of different
    precisions never mix: the ONNX backend matches eager PyTorch within 1e-4, so both share fp32.
    model: a registered name, ``onnx:PATH`` (a user's ONNX encoder: CPU, ONNX Runtime, fp32) or
    a ModelSpec.
    """

    def __init__(self, model: str | ModelSpec = "efficientnet-lite0", weights: str = "default",
                 device: str = "auto", backend: str = "auto",
                 models_dir: str | Path | None = None, precision: str = "fp32") -> None:
        self.spec: ModelSpec = get_model(model) if isinstance(model, str) else model
        if self.spec.onnx is not None:
            _check_onnx_file_options(weights, device, backend, precision)
        self.weights = weights
        self.requested_device, self.requested_backend = device, backend
        self.precision = precision
        self.fp32_key = model_key(self.spec, weights)
        # int8's form follows the CPU (backends/quantize.int8_form): a different graph, a different key
        self.int8_form = this_cpu_int8_form() if precision == "int8" else None
        tag = self.int8_form.precision if self.int8_form else precision
        self.key = self.fp32_key + ("" if precision == "fp32" else f"|{tag}")
        self.models_dir_given = Path(models_dir) if models_dir else None  # else each machine's own
        self.models_dir = self.models_dir_given or user_models_dir()
        self._runner: Runner | None = None
        self._device: str | None = None
        self._backend: str | None = None
        if device != "auto" or self.spec.onnx is not None:  # checked at once: costs no import
            self._backend = choose_backend(backend, self.device)
        elif backend not in BACKENDS:
            choose_backend(backend, "cpu")  # the unknown-name error, without settling anything

    # Device and backend are settled on first use: asking torch about CUDA costs seconds of
    # imports, which a rerun that finds every embedding in the cache never pays.
    @property
    def device(self) -> str:
        if self._device is None:
            self._device = "cpu" if self.spec.onnx else resolve_device(self.requested_device)
            check_precision(self.precision, self._device, self.requested_backend)
        return self._device

    @property
    def backend(self) -> str:
        if self._backend is None:
            self._backend = choose_backend(self.requested_backend, self.device)
        return self._backend

    @property
    def resolved(self) -> bool:
        """Whether device and backend were settled (they are once anything was embedded)."""
        return self._device is not None

    def load(self) -> Runner:
        """Build (or load the cached export of) the model; a model that cannot be had fails here."""
        if self._runner is None:
            with timed("model"):
                self._runner = self._make_runner()
        return self._runner

    def _make_runner(self) -> Runner:
        if self.spec.onnx is not None:
            return _user_onnx(self.spec.onnx.path, self.spec.onnx.output)
        derived = self.precision in ("int8", "bf16") and self.device == "cpu"
        if self.backend == "onnx" or derived:
            runner = self._onnx()
            if runner is not None:
                return self._derive(runner) if derived else runner
            if derived:
                raise RepsampleError(f"{mention('precision')} {self.precision} needs the model's ONNX "
                                     f"export, which failed (see the log); use {mention('precision')} fp32")
            self._backend = "torch"  # same key: eager is the reference the export is checked against
        require_torch(f"{mention('backend')} torch" if self.requested_backend == "torch"
                      else f"the model {self.spec.name} on {self.device}", self.spec.extra)
        return TorchRunner(self.spec.build(self.weights), self.device, self.precision)

    def _onnx(self) -> OnnxRunner | None:
        """The fp32 ONNX runner: the user's file when there is one (no torch imported), else made
        now: built from the weights alone where the model can be (the default model), or
        exported from the eager model with PyTorch and checked against it once."""
        built = self.spec.graph is not None and self.weights != "random"
        try:
            path = self.models_dir / export_name(self.fp32_key, built)
        except PackageNotFoundError:  # PyTorch's export is named by torch's version: no torch
            require_torch(f"the model {self.spec.name}" + (" with --weights random" if
                          self.weights == "random" else ""), self.spec.extra)
            raise  # torch imports but has no metadata: a broken install, not ours to hide
        runner = load_export(path, cpu_threads())
        if runner is None and built:
            assert self.spec.graph is not None
            logger.info("building the model's ONNX graph from its weights (once per model): %s", path)
            self.spec.graph(self.weights, path)
            runner = OnnxRunner(path, cpu_threads())
        elif runner is None:
            runner = export_checked(self.spec.build(self.weights), self.spec.preprocess.size, path,
                                    cpu_threads())
        return runner

    def _derive(self, fp32: OnnxRunner) -> Runner:
        """The int8 or bf16 model made from the fp32 export."""
        if self.int8_form is not None:
            return load_int8(fp32, self.spec.preprocess, cpu_threads(), self.int8_form)
        from repsample.embedding.backends.openvino import OpenVinoRunner

        self._backend = "openvino"
        return OpenVinoRunner(fp32.path, cpu_threads())

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        runner = self.load()
        try:
            out = runner(batch)
        except Exception as exc:
            if self.spec.onnx is None:
                raise
            # A user's file: a wrong input size or layout is theirs to fix, in one line.
            raise RepsampleError(f"{self.spec.name} failed on a batch of shape {batch.shape} "
                                 f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); check "
                                 "its input size and preprocessing") from None
        if out.ndim != 2 or out.shape[1] != self.spec.dim:
            raise RepsampleError(f"model {self.spec.name} gave embeddings of shape {out.shape}, expected "
                                 f"(N, {self.spec.dim}); check {mention('model')} and {mention('weights')}")
        return out


def _check_onnx_file_options(weights: str, device: str, backend: str, precision: str) -> None:
    """A user's ONNX file runs as it is: on the CPU, in ONNX Runtime, in fp32, with its weights."""
    for option, value, allowed in (("weights", weights, ("default",)), ("device", device, ("auto", "cpu")),
                                   ("backend", backend, ("auto", "onnx")),
                                   ("precision", precision, ("fp32",))):
        if value not in allowed:
            raise UsageError(f"{value!r} does not apply to an onnx:PATH model, which runs as it is "
                             f"in ONNX Runtime on the CPU; choose {' or '.join(allowed)}", option=option)


def _user_onnx(path: Path, output: str | None) -> OnnxRunner:
    try:
        return OnnxRunner(path, cpu_threads(), output)
    except Exception as exc:  # onnxruntime raises its own types for a file it cannot run
        raise RepsampleError(f"ONNX Runtime cannot load {path} ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Embedded:
    """Per file, in order: its content hash and either its row in ``vectors`` or an error."""

    hashes: list[str | None]
    rows: list[int | None]
    errors: list[str | None]
    vectors: np.ndarray  # (valid files, dim) float32

    @property
    def row_hashes(self) -> list[str]:
        """The content hash of each row of ``vectors`` (rows follow the files' order)."""
        return [h for h, r in zip(self.hashes, self.rows, strict=True) if r is not None and h is not None]


LOOKAHEAD = 2  # batches decoded ahead of the model


@dataclass(frozen=True)
class DecodedBatch:
    """Positions (in the paths given) of the decoded images, their pixels, the errors at their
    positions, and (when asked for) each decoded image's pixel descriptor and quality measures.
    ``pixels`` is valid until the next batch is asked for: its memory is reused."""

    positions: list[int]
    pixels: np.ndarray | None
    errors: list[tuple[int, str]]
    descriptors: list[np.ndarray]
    qualities: list[np.ndarray]


@dataclass(frozen=True)
class _Decoded:
    """One file, its model input written to its row of the batch: the descriptor and quality
    measures when made, or the error."""

    error: str | None = None
    descriptor: np.ndarray | None = None
    quality: np.ndarray | None = None


def _decode(path: Path | str, preprocess: Preprocess, describe: bool, row: np.ndarray) -> _Decoded:
    try:
        image, size = decode_sized(path, preprocess.draft_size)
    except DecodeError as exc:
        return _Decoded(str(exc))
    # The quality measures reduce the image to the model's scale themselves: any decode at least
    # SOURCE_SIZE serves (a full one too); the descriptor must be made at SOURCE_SIZE exactly.
    quality = measure_image(image, size) if preprocess.draft_size in (None, SOURCE_SIZE) else None
    preprocess(image, out=row)
    return _Decoded(None, describe_image(image) if describe else None, quality)


def batch_buffers(preprocess: Preprocess, batch_size: int) -> list[np.ndarray]:
    """The LOOKAHEAD + 1 batches ``decoded_batches`` writes into, in turn. Made once for a run's
    groups: fresh memory costs page faults at first touch, 0.02-0.2 s for these three."""
    width, height = preprocess.size
    return [np.empty((batch_size, 3, height, width), np.float32) for _ in range(LOOKAHEAD + 1)]


def decoded_batches(
    paths: Sequence[Path | str], preprocess: Preprocess, batch_size: int, workers: int,
    describe: bool = False, buffers: Sequence[np.ndarray] | None = None,
) -> Iterator[DecodedBatch]:
    """Batches of the paths, decoded, in order, with each image's quality measures (a model that
    decodes at least at SOURCE_SIZE); describe: also its pixel descriptor (at SOURCE_SIZE).

    A pool of threads decodes up to LOOKAHEAD batches ahead while the model runs: PIL and numpy
    release the GIL, and in one process nothing is pickled or copied between processes. On
    2 cores this reached 85% of the bare model's throughput where decoding worker processes
    reached 53% (bench/speed.py, embedding stage). Each thread writes its image's pixels into
    its row of one of LOOKAHEAD + 1 batch buffers, reused: a new 38 MB batch for every 64
    images cost a copy and fresh pages, 10-15 % of a first run's embedding throughput here.
    buffers: ``batch_buffers`` made by the caller, to reuse across calls (None: made here).
    """
    rows = min(batch_size, len(paths))
    buffers = buffers or batch_buffers(preprocess, rows)
    assert len(buffers) == LOOKAHEAD + 1 and all(len(b) >= rows for b in buffers), \
        "decoded_batches takes batch_buffers(preprocess, batch_size)"
    starts = iter(range(0, len(paths), batch_size))
    pending: deque[tuple[np.ndarray, list[Future[_Decoded]]]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                # LOOKAHEAD + 1 batches back: the batch yielded from this buffer is done with
                buffer = buffers[start // batch_size % len(buffers)]
                pending.append((buffer, [pool.submit(_decode, p, preprocess, describe, buffer[i])
                                         for i, p in enumerate(paths[start : start + batch_size])]))

        try:
            for _ in range(LOOKAHEAD):
                submit()
            offset = 0
            while pending:
                buffer, futures = pending.popleft()
                results = [f.result() for f in futures]
                submit()
                ok = [i for i, r in enumerate(results) if r.error is None]
                errors = [(offset + i, r.error) for i, r in enumerate(results) if r.error is not None]
                pixels = buffer[: len(ok)] if len(ok) == len(results) else buffer[ok]
                yield DecodedBatch([offset + i for i in ok], pixels if ok else None, errors,
                                   [d for r in results if (d := r.descriptor) is not None],
                                   [q for r in results if (q := r.quality) is not None])
                offset += len(results)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # an interrupted run stops decoding


def compute_missing(
    paths: Sequence[Path | str],
    hashes: Sequence[str],
    embedder: Embedder,
    cache: ContentCache,
    batch_size: int = 64,
    workers: int = 2,
    progress: Progress | None = None,
    buffers: Sequence[np.ndarray] | None = None,
) -> int:
    """Embed every (path, hash) whose hash the cache lacks; each batch is committed on arrival.
    workers: decoding threads, a number already settled (``decode_workers``); buffers: the
    batches to decode into (``batch_buffers``), when the caller reuses them across groups.

    Returns how many distinct contents were decoded (0 when the cache had them all).
    """
    known = cache.stored(hashes, embedder.key)
    todo: dict[str, Path | str] = {}
    for path, digest in zip(paths, hashes, strict=True):
        if digest not in known and digest not in todo:
            todo[digest] = path  # one decode per distinct content
    bar = (progress or SilentProgress()).stage("embed", len(paths))
    bar.advance(len(paths) - len(todo))
    if not todo:
        bar.close()
        return 0
    todo_hashes = list(todo)
    embedder.load()
    # The duplicate check's pixel descriptor from the same decode, where it is made at this size.
    describe = embedder.spec.preprocess.draft_size == SOURCE_SIZE
    for decoded in decoded_batches(list(todo.values()), embedder.spec.preprocess, batch_size,
                                   workers, describe, buffers):
        ok = [todo_hashes[i] for i in decoded.positions]
        vectors = (embedder(decoded.pixels) if decoded.pixels is not None
                   else np.empty((0, embedder.spec.dim)))
        cache.put_many(
            embedder.key,
            vectors=list(zip(ok, vectors, strict=True)),
            errors=[(todo_hashes[i], e) for i, e in decoded.errors],
        )
        if decoded.descriptors:
            cache.put_many(DESCRIPTOR_KEY, vectors=list(zip(ok, decoded.descriptors, strict=True)))
        if decoded.qualities:
            cache.put_many(QUALITY_KEY, vectors=list(zip(ok, decoded.qualities, strict=True)))
        bar.advance(len(decoded.positions) + len(decoded.errors))
    bar.close()
    return len(todo)


def embed_files(
    files: Sequence[ImageFile],
    embedder: Embedder,
    cache: ContentCache,
    batch_size: int = 64,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Embedded:
    """Fingerprint, embed what the cache lacks, and gather the vectors in file order."""
    n_workers = decode_workers(workers)
    prints: list[Fingerprint] = fingerprint(files, cache, n_workers, progress)
    readable = [(f.path, fp.hash) for f, fp in zip(files, prints, strict=True) if fp.hash is not None]
    compute_missing(
        [p for p, _ in readable], [h for _, h in readable], embedder, cache,
        batch_size, n_workers, progress,
    )
    return gather(prints, cache, embedder)


_GATHER_CHUNK = 4096


def gather(prints: Sequence[Fingerprint], cache: ContentCache, embedder: Embedder) -> Embedded:
    """The cached vectors of fingerprinted files, in order; files without one carry their error.

    Read in chunks straight into one matrix: a 100,000-image group holds its matrix and one
    chunk, not every vector twice.
    """
    rows: list[int | None] = []
    errors: list[str | None] = []
    matrix = np.empty((len(prints), embedder.spec.dim), np.float32)
    valid = 0
    for start in range(0, len(prints), _GATHER_CHUNK):
        chunk = prints[start : start + _GATHER_CHUNK]
        entries = cache.get_many([fp.hash for fp in chunk if fp.hash], embedder.key)
        for fp in chunk:
            entry = entries.get(fp.hash) if fp.hash else None
            if entry is not None and entry.vector is not None:
                matrix[valid] = entry.vector
                rows.append(valid)
                errors.append(None)
                valid += 1
            else:
                rows.append(None)
                errors.append(fp.error or (entry.error if entry else None) or "not embedded")
    vectors = matrix[:valid] if valid == len(rows) else matrix[:valid].copy()
    return Embedded([fp.hash for fp in prints], rows, errors, vectors)


def embed_images(
    paths: Sequence[str | Path],
    model: str | ModelSpec = "efficientnet-lite0",
    weights: str = "default",
    *,
    device: str = "auto",
    backend: str = "auto",
    batch_size: int = 64,
    workers: int | None = None,
    cache: str | Path | None = None,
    precision: str = "fp32",
) -> Embedded:
    """Embed image files with a model (a registered name, ``onnx:PATH`` or a ModelSpec), using
    (and filling) the embedding cache.

    Files that cannot be read or decoded get an error instead of a row in ``vectors``.
    """
    files = []
    for p in paths:
        path = Path(p).absolute()
        try:
            st = path.stat()
        except OSError as exc:
            raise RepsampleError(f"cannot read {p}: {exc.strerror}") from None
        files.append(ImageFile(path, str(p), "", st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    cache_path = Path(cache or default_cache_path())
    embedder = Embedder(model, weights, device, backend, precision=precision)
    with ContentCache(cache_path) as db:
        return embed_files(files, embedder, db, batch_size, workers)
