"""The Ray engine: read, hash, decode and embed as a Ray Data pipeline; the driver fills the cache.

What runs where:
- driver (this process): scan, the (path, size, mtime) fast path, and every SQLite write. It is
  the cache's only writer, so workers need no shared disk and a retried batch can only repeat
  an ``INSERT OR IGNORE`` of the same content: no lost rows, no duplicates.
- workers: ``map_batches`` with a pool of model actors, each holding one Embedder (the same
  model building, preprocessing and backend choice as the local engine). On CPUs an actor also
  reads and decodes its batch; with GPUs, stateless CPU tasks read and decode and GPU actors embed.
Ray restarts an actor that dies and retries its batch (Ray Data's defaults for actors).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from repsample import fsio
from repsample.cache import ContentCache, FileStat
from repsample.embedding.decode import DecodeError, decode_image
from repsample.embedding.embed import Embedder
from repsample.embedding.engines.common import EmbedOptions, EmbedStage
from repsample.embedding.fingerprint import Fingerprint, file_stat, fresh_stat
from repsample.errors import RepsampleError, mention, missing_extra
from repsample.inputs.folder import Group, ImageFile
from repsample.models import get_model
from repsample.progress import Progress

logger = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the extra brings Ray Data too
    except ImportError:
        raise missing_extra("ray", "ray") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Join the cluster at address, or start a local Ray; a session already open is reused as is."""
    ray = import_ray()
    if ray.is_initialized():  # started by the caller (a notebook, the tests): not ours to stop
        yield ray
        return
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RepsampleError(
            f"cannot start {where} ({exc}); check {mention('ray_address')}, or start one with "
            "`ray start --head`"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


# -- worker side ---------------------------------------------------------------------------------

def read_and_decode(batch: Batch, model: str) -> Batch:
    """Read each file once: its bytes give the content hash and the model's input pixels."""
    preprocess = get_model(model).preprocess
    width, height = preprocess.size
    n = len(batch["index"])
    pixels = np.zeros((n, 3, height, width), np.float32)
    hashes, read_errors, errors = [""] * n, [""] * n, [""] * n
    for j, location in enumerate(batch["location"]):
        try:
            data = fsio.read_bytes(str(location))
        except OSError as exc:
            read_errors[j] = f"cannot read file: {exc.strerror or exc}"
            continue
        hashes[j] = hashlib.sha256(data).hexdigest()
        try:
            pixels[j] = preprocess(decode_image(io.BytesIO(data), preprocess.draft_size))
        except DecodeError as exc:
            errors[j] = str(exc)
    return {"index": batch["index"], "hash": np.array(hashes, dtype=object),
            "read_error": np.array(read_errors, dtype=object),
            "error": np.array(errors, dtype=object), "pixels": pixels}


class EmbedActor:
    """One model per actor, loaded once; embeds the decodable rows of each batch."""

    def __init__(self, model: str, weights: str, device: str, backend: str,
                 models_dir: str | None, precision: str = "fp32") -> None:
        self.model = model
        self.embedder = Embedder(model, weights, device, backend, models_dir, precision)
        self.embedder.load()

    def __call__(self, batch: Batch) -> Batch:
        if "pixels" not in batch:  # CPU layout: this actor reads and decodes too
            batch = read_and_decode(batch, self.model)
        ok = (batch["read_error"] == "") & (batch["error"] == "")
        vectors = np.zeros((len(ok), self.embedder.spec.dim), np.float32)
        if ok.any():  # an eager runner keeps torch in inference mode itself
            vectors[ok] = self.embedder(np.ascontiguousarray(batch["pixels"][ok]))
        return {"index": batch["index"], "hash": batch["hash"], "read_error": batch["read_error"],
                "error": batch["error"], "vector": vectors}


# -- driver side ---------------------------------------------------------------------------------

def run(
    groups: Sequence[Group],
    cache: ContentCache,
    embedder: Embedder,
    options: EmbedOptions,
    progress: Progress,
    *,
    actor_cls: type[EmbedActor] = EmbedActor,
) -> EmbedStage:
    """Fingerprint and embed every file of groups through Ray; same outcome as the local engine."""
    t0 = time.perf_counter()
    files = [f for g in groups for f in g.files]
    prints: list[Fingerprint | None] = [None] * len(files)
    stats = [file_stat(f) for f in files]
    known = cache.known_hashes(stats)
    done = cache.stored(list(set(known.values())), embedder.key)
    todo = []
    for i, stat in enumerate(stats):
        digest = known.get(stat.path)
        if digest is not None and digest in done:
            prints[i] = Fingerprint(digest)  # unchanged file, content embedded: nothing to read
        else:
            todo.append(i)
    hash_bar, embed_bar = progress.stage("hash", len(files)), progress.stage("embed", len(files))
    hash_bar.advance(len(files) - len(todo))
    embed_bar.advance(len(files) - len(todo))
    fresh: set[str] = set()
    if todo:
        embedder.load()  # a model that cannot be had fails here, on the driver, before any work
        stat_from = time.time_ns()
        for i in todo:  # the stat the cache keeps is the one taken just before the read
            stats[i] = fresh_stat(files[i], stats[i])
        with ray_session(options.ray_address) as ray:
            batches = _pipeline(ray, [files[i] for i in todo], embedder, options, actor_cls)
            for batch in batches:
                rows = [todo[int(j)] for j in batch["index"]]
                fresh |= _store(batch, rows, stats, stat_from, prints, cache, embedder.key)
                hash_bar.advance(len(rows))
                embed_bar.advance(len(rows))
    hash_bar.close()
    embed_bar.close()
    return _stage(groups, prints, fresh, set(todo), time.perf_counter() - t0)


def _pipeline(ray: Any, files: Sequence[ImageFile], embedder: Embedder, options: EmbedOptions,
              actor_cls: type[EmbedActor]) -> Iterator[Batch]:
    import pyarrow as pa

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the caller shows its own
    size = options.batch_size
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # plan and stats chatter
    table = pa.table({"index": np.arange(len(files), dtype=np.int64),
                      "location": [str(f.path) for f in files]})
    # One block per batch, made here: a repartition would need CPU tasks while the actors
    # hold every CPU (a deadlock on a small local Ray).
    blocks = [table.slice(start, size) for start in range(0, len(files), size)]
    ds = ray.data.from_arrow(blocks)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if options.device != "cpu" else 0
    actors = min(len(blocks), options.workers or gpus or max(1, int(resources.get("CPU", 1))))
    spec = embedder.spec
    init = {"model": spec.name, "weights": embedder.weights, "device": "cuda" if gpus else "cpu",
            "backend": options.backend if gpus == 0 else "torch",
            # the driver's models folder only if one was given: else each worker's own user folder
            "models_dir": str(embedder.models_dir_given) if embedder.models_dir_given else None,
            "precision": embedder.precision}
    if gpus:  # CPU tasks decode, GPU actors only embed
        ds = ds.map_batches(read_and_decode, fn_kwargs={"model": spec.name}, batch_size=size,
                            batch_format="numpy", num_cpus=1)
    ds = ds.map_batches(actor_cls, fn_constructor_kwargs=init, batch_size=size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=actors),
                        num_cpus=1, num_gpus=1 if gpus else 0)
    logger.info("ray: %d files, %d %s actor(s), batches of %d", len(files), actors,
                "GPU" if gpus else "CPU", size)
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _store(batch: Batch, rows: list[int], stats: Sequence[FileStat], stat_from: int,
           prints: list[Fingerprint | None], cache: ContentCache, model_key: str) -> set[str]:
    """Write one result batch: file hashes, then vectors and decode errors (first one wins)."""
    hashes = [str(h) for h in batch["hash"]]
    before = cache.stored([h for h in hashes if h], model_key)
    vectors, errors, hashed = [], [], []
    for j, i in enumerate(rows):
        read_error = str(batch["read_error"][j])
        if read_error:
            prints[i] = Fingerprint(None, read_error)
            continue
        prints[i] = Fingerprint(hashes[j])
        hashed.append((stats[i], hashes[j]))
        if batch["error"][j]:
            errors.append((hashes[j], str(batch["error"][j])))
        else:
            vectors.append((hashes[j], batch["vector"][j]))
    cache.remember_hashes(hashed, stat_from)
    cache.put_many(model_key, vectors=vectors, errors=errors)
    return {h for h, _ in vectors + errors} - before


def _stage(groups: Sequence[Group], prints: list[Fingerprint | None], fresh: set[str],
           todo: set[int], seconds: float) -> EmbedStage:
    """Per-group figures as the local engine reports them (a content counts in its first group)."""
    out: dict[str, list[Fingerprint]] = {}
    computed: dict[str, int] = {}
    timings: dict[str, dict[str, float]] = {}
    counted: set[str] = set()
    start, total = 0, max(1, sum(len(g.files) for g in groups))
    for group in groups:
        span = range(start, start + len(group.files))
        start += len(group.files)
        out[group.name] = [p for p in prints[span.start:span.stop] if p is not None]
        mine = {p.hash for i in span if i in todo and (p := prints[i]) is not None and p.hash}
        mine = (mine & fresh) - counted
        counted |= mine
        computed[group.name] = len(mine)
        # One pipeline serves every group: its time is shared out by file count.
        timings[group.name] = {"embed": seconds * len(group.files) / total}
    return EmbedStage(out, computed, timings)
