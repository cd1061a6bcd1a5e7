"""Vectors computed elsewhere (CLIP, DINOv2, a fine-tuned network), read from a file and checked.

Three layouts, those clip-retrieval and img2dataset users already have:

- ``.npy``: a (rows, dim) matrix, with a paths file: one path a line, in row order (by default
  beside it, same name, ``.txt``), or a ``.parquet`` with a path column (clip-retrieval's
  metadata file);
- ``.npz``: a (rows, dim) matrix and a 1-D array of paths (named as below, or the only ones);
- ``.parquet``: a path column and a vector column (a list of numbers per row).

A row's key is a path relative to INPUT (an absolute path under INPUT counts too) or a file's
content hash (manifest.csv's ``hash``). Every problem in the file is one line: vectors that are
not all of one dimension, NaN or infinite values, vectors too long to compute with in float32, a
key given twice, rows and paths that do not pair up.

``embed_from_file`` puts a checked file's vectors into the embedding cache, as an engine puts a
model's there (engines/), so that every stage after reads them alike.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repsample.cache import ContentCache, content_key
from repsample.embedding.embed import Embedder, compute_missing
from repsample.embedding.engines.common import EmbedOptions, EmbedStage
from repsample.embedding.fingerprint import Fingerprint, fingerprint_groups
from repsample.errors import UsageError, mention, missing_extra
from repsample.inputs.folder import Group
from repsample.models import ModelSpec
from repsample.models.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from repsample.progress import Progress

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

KEY_NAMES = ("path", "paths", "image_path", "filepath", "file", "key", "hash")
VECTOR_NAMES = ("embedding", "embeddings", "vector", "vectors", "image_embedding", "img_emb")
FORMATS = (".npy", ".npz", ".parquet")
_LONGEST = 1e12
"""The longest vector accepted. Distances, clusterings and scores are computed in float32 (at
most 3.4e38), on squared distances summed over many rows: a vector of length near 1e19 already
overflows them to inf, and the manifest would hold distances that no reader accepts."""


@dataclass(frozen=True)
class VectorFile:
    """Rows of vectors and the key (path or content hash) of each."""

    path: Path
    keys: list[str]
    vectors: np.ndarray  # (rows, dim) float32, finite
    digest: str  # of the file(s) read: names these vectors in the embedding cache

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows_by_key(self, roots: Sequence[Path] = ()) -> dict[str, int]:
        """Key -> row; an absolute path under one of roots (INPUT, as given and resolved) made
        relative to it. A key given twice: UsageError."""
        rows: dict[str, int] = {}
        for row, key in enumerate(self.keys):
            norm = _relative(key, roots)
            if norm in rows:
                raise _bad(self.path, f"{key!r} appears twice (rows {rows[norm]} and {row})")
            rows[norm] = row
        return rows


def read_vectors(path: Path, paths_file: Path | None = None) -> VectorFile:
    """Read and check an embeddings file; every problem is a UsageError naming the file."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise _bad(path, f"is not one of {', '.join(FORMATS)}")
    try:
        if suffix == ".npy":
            paths_file = paths_file or path.with_suffix(".txt")
            if not paths_file.is_file():
                raise _bad(path, f"needs its paths file: {paths_file} not found (one path a line, in "
                                 f"row order; or pass {mention('embeddings_paths')})")
            matrix, keys = np.load(path, allow_pickle=False), _read_keys(paths_file)
            sources = [path, paths_file]
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                matrix, keys = _npz(path, {name: arrays[name] for name in arrays.files})
            sources = [path]
        else:
            matrix, keys = _parquet(path)
            sources = [path]
    except (OSError, ValueError, EOFError) as exc:  # a damaged or truncated file
        raise _bad(path, f"cannot be read ({type(exc).__name__}: {exc})") from None
    return VectorFile(path, keys, _checked(path, matrix, keys), content_key(files=sources)[:16])


@dataclass(frozen=True)
class FillOptions:
    """What ``embed_from_file`` needs beyond the engines' options (narrow: embedding/ does not
    read SelectConfig)."""

    model: ModelSpec
    """--model: with missing_vectors embed it embeds the files the vectors miss, so it must be
    the model that made them; with error no model runs."""
    missing_vectors: str = "error"
    """embed: the model embeds the files the vectors miss; error: each becomes an error row."""
    weights: str = "default"
    precision: str = "fp32"


def embed_from_file(
    src: Path | str, groups: Sequence[Group], source: VectorFile, cache: ContentCache,
    fill: FillOptions, options: EmbedOptions, progress: Progress,
) -> tuple[Embedder, EmbedStage]:
    """--embeddings: the file's vectors enter the cache under a key of their own (the file's
    digest), so that everything after reads them as it reads a model's. A file the vectors miss
    is embedded with the model (missing_vectors embed: the model must be the one that made
    them) or gets an error entry, which makes it an error row."""
    embed_missing = fill.missing_vectors == "embed"
    spec = _vectors_spec(source, fill)
    weights = fill.weights if embed_missing else "default"  # no model runs
    embedder = Embedder(spec, weights, options.device, options.backend, precision=fill.precision)
    prints, seconds = fingerprint_groups(groups, cache, options.threads, progress)
    roots = [Path(src).absolute(), Path(src).resolve()] if isinstance(src, Path) else []
    found, missing = _match_rows(source, groups, prints, roots)
    new = set(found) - cache.stored(list(found), embedder.key)
    cache.put_many(embedder.key, vectors=[(h, source.vectors[found[h]]) for h in sorted(new)])
    computed: dict[str, int] = {}
    for group in groups:
        t0 = time.perf_counter()
        todo = [(p, h) for p, h in missing[group.name] if h not in found]
        if embed_missing:
            computed[group.name] = compute_missing(
                [p for p, _ in todo], [h for _, h in todo], embedder, cache, options.batch_size,
                options.threads, progress)
        else:
            no_vector = f"no vector in {source.path.name}"
            cache.put_many(embedder.key, errors=[(h, no_vector) for _, h in todo])
            computed[group.name] = 0
        seconds[group.name]["embed"] = time.perf_counter() - t0
    return embedder, EmbedStage(prints, computed, seconds)


def _match_rows(
    source: VectorFile, groups: Sequence[Group], prints: Mapping[str, Sequence[Fingerprint]],
    roots: Sequence[Path],
) -> tuple[dict[str, int], dict[str, list[tuple[Path | str, str]]]]:
    """Content hash -> the file's row, by path relative to INPUT or by content hash; and per
    group, the readable files no row matched. No row matching at all: UsageError."""
    rows = source.rows_by_key(roots)
    found: dict[str, int] = {}
    missing: dict[str, list[tuple[Path | str, str]]] = {g.name: [] for g in groups}
    for group in groups:
        for f, fp in zip(group.files, prints[group.name], strict=True):
            row = rows.get(f.rel, rows.get(fp.hash or ""))
            if row is not None and fp.hash is not None:
                found.setdefault(fp.hash, row)
            elif fp.hash is not None:
                missing[group.name].append((f.path, fp.hash))
    if not found:
        raise UsageError(f"{source.path}: none of its {len(source.keys)} rows matches a file "
                         f"under INPUT by path relative to INPUT or content hash (row 0: "
                         f"{source.keys[0]!r})", option="embeddings")
    logger.info("%s: %d of %d rows match files under INPUT", source.path,
                len(set(found.values())), len(source.keys))
    return found, missing


def _vectors_spec(source: VectorFile, fill: FillOptions) -> ModelSpec:
    """What names the file's vectors in the cache and the run record: the file's digest; with
    missing_vectors embed, the model too (it fills the gaps, so it must give the same kind)."""
    name, identity = f"embeddings:{source.path}", f"embeddings-sha256-{source.digest}-{source.dim}d"
    model = fill.model
    if fill.missing_vectors == "embed":
        if model.dim != source.dim:
            raise UsageError(f"embed needs the model that made {source.path.name}'s {source.dim}-d "
                             f"vectors; {model.name} gives {model.dim}-d", option="missing_vectors")
        return dataclasses.replace(model, name=f"{name}+{model.name}",
                                   identity=f"{identity}+{model.identity or model.name}")
    # No model runs: nothing of --model may enter the key (a fixed preprocessing stands in).
    return ModelSpec(name=name, summary=f"vectors read from {source.path}", dim=source.dim,
                     preprocess=Preprocess((224, 224), IMAGENET_MEAN, IMAGENET_STD),
                     build=_no_model, default_weights="in-file", offline=True, identity=identity)


def _no_model(weights: str) -> nn.Module:
    raise UsageError("has a vector for every file it embeds: no model runs", option="embeddings")


def _checked(path: Path, matrix: Any, keys: Sequence[str]) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number) or 0 in matrix.shape:
        raise _bad(path, f"holds {matrix.dtype} of shape {matrix.shape}, not a (rows, dim) matrix of "
                         "numbers")
    if len(keys) != len(matrix):
        raise _bad(path, f"has {len(matrix)} vectors but {len(keys)} paths")
    values = matrix if matrix.dtype.kind == "f" else matrix.astype(np.float64)  # integers too
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise _bad(path, f"row {row} ({keys[row]!r}) has NaN or infinite values "
                         f"({int(bad.sum())} row(s) in all)")
    return np.ascontiguousarray(_short_enough(path, values, keys))


def _short_enough(path: Path, values: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """The finite matrix in float32, if no row is longer than _LONGEST; else a UsageError naming
    the first that is. Lengths are computed on values clipped to _LONGEST (so without overflow);
    a row with a value beyond it is at least that value long."""
    peak = np.maximum(values.max(axis=1), -values.min(axis=1)).astype(np.float64)
    # float16 cannot hold _LONGEST (clip would overflow casting it) nor exceed it: nothing to clip
    narrow = np.issubdtype(values.dtype, np.floating) and float(np.finfo(values.dtype).max) < _LONGEST
    clipped = values if narrow else np.clip(values, -_LONGEST, _LONGEST)
    vectors: np.ndarray = clipped.astype(np.float32, copy=False)
    squares = np.einsum("ij,ij->i", vectors, vectors)  # at most dim * 1e24: within float32
    lengths = np.maximum(np.sqrt(squares.astype(np.float64)), peak)
    long = lengths > _LONGEST
    if long.any():
        row = int(np.argmax(long))
        raise _bad(path, f"row {row} ({keys[row]!r}) is at least {lengths[row]:.3g} long; vectors "
                         f"may be at most {_LONGEST:.0e} long ({int(long.sum())} row(s) longer): "
                         "scale them down, e.g. to unit length")
    return vectors


def _read_keys(paths_file: Path) -> list[str]:
    if paths_file.suffix.lower() == ".parquet":
        table = _read_parquet(paths_file)
        return _keys(paths_file, table.column(_column(paths_file, table, KEY_NAMES, "path")))
    return [line.rstrip("\r") for line in paths_file.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _npz(path: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    def pick(names: tuple[str, ...], fits: Any, what: str) -> np.ndarray:
        named = [arrays[n] for n in names if n in arrays]
        found = named or [a for a in arrays.values() if fits(a)]
        if len(found) != 1:
            raise _bad(path, f"needs one {what} array (named {' or '.join(names[:3])}); it has: "
                             f"{', '.join(arrays) or 'none'}")
        return found[0]

    keys = pick(KEY_NAMES, lambda a: a.ndim == 1 and a.dtype.kind in "US", "paths")
    matrix = pick(VECTOR_NAMES, lambda a: a.ndim == 2, "vectors")
    return matrix, [k.decode() if isinstance(k, bytes) else str(k) for k in keys.tolist()]


def _read_parquet(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "parquet") from None
    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and kin for a file that is not parquet
        raise _bad(path, f"cannot be read as parquet ({type(exc).__name__}: {exc})") from None


def _parquet(path: Path) -> tuple[np.ndarray, list[str]]:
    import pyarrow as pa

    table = _read_parquet(path)
    keys = _keys(path, table.column(_column(path, table, KEY_NAMES, "path")))
    column = table.column(_column(path, table, VECTOR_NAMES, "vector")).combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        raise _bad(path, f"vector column holds {column.type}, not lists of numbers")
    if column.null_count:
        row = column.is_null().to_pylist().index(True)
        raise _bad(path, f"row {row} ({keys[row]!r}) has no vector")
    lengths = np.asarray(column.value_lengths())
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.argmax(lengths != lengths[0]))
        raise _bad(path, f"row {row} ({keys[row]!r}) has a {lengths[row]}-d vector, row 0 a "
                         f"{lengths[0]}-d one")
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False))
    return values.reshape(len(column), int(lengths[0]) if len(lengths) else 0), keys


def _column(path: Path, table: Any, names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in table.column_names:
            return name
    raise _bad(path, f"has no {what} column (one of: {', '.join(names)}); it has: "
                     f"{', '.join(table.column_names)}")


def _keys(path: Path, column: Any) -> list[str]:
    keys = column.to_pylist()
    if any(not isinstance(k, str) for k in keys):
        raise _bad(path, "has a path that is empty or not text")
    return list(keys)


def _relative(key: str, roots: Sequence[Path]) -> str:
    """A key as scanned paths are spelled: relative to INPUT, '/'-separated."""
    key = key.strip()
    for root in roots if key.startswith("/") else ():
        if Path(key).is_relative_to(root):
            return Path(key).relative_to(root).as_posix()
    return key[2:] if key.startswith("./") else key


def _bad(path: Path, problem: str) -> UsageError:
    return UsageError(f"{path} {problem}", option="embeddings")
