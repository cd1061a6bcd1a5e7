"""The dataset as both orchestrators (select, check) see it: groups scanned, every image
fingerprinted and embedded (or found in the cache), and what the hygiene pass found.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from repsample.cache import EmbeddingCache
from repsample.config import SelectConfig
from repsample.embedding.embed import Embedded, Embedder, compute_missing, decode_workers, gather
from repsample.embedding.engines import EmbedOptions, EmbedStage, run_embed_stage
from repsample.embedding.engines.local import fingerprint_groups
from repsample.embedding.fingerprint import Fingerprint
from repsample.embedding.vectors_file import VectorFile, read_vectors
from repsample.errors import UsageError
from repsample.hygiene import Findings, find
from repsample.hygiene.near import Pairs
from repsample.hygiene.outliers import GroupRows, ImageScores, split_scores
from repsample.hygiene.pairs import near_duplicates
from repsample.inputs.dispatch import ScannedInput, SelectionWriter, listing_file, local_root, scan_input
from repsample.inputs.folder import Group
from repsample.models import ModelSpec
from repsample.models.base import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from repsample.output.export import check_cache_apart, check_group_names
from repsample.progress import Progress

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """An embedded dataset; ``cache`` stays open while the ``open_dataset`` block runs."""

    groups: list[Group]
    embedder: Embedder
    cache: EmbeddingCache
    embedded: EmbedStage
    findings: Findings
    write_selection: SelectionWriter | None = None  # a listing or dataset INPUT, in its own form


def scored_groups(data: Dataset, seed: int) -> dict[str, tuple[Embedded, ImageScores]]:
    """Every group's cached vectors (in file order) and its image scores, each group scored
    against the other groups of its split (hygiene/outliers.py; stored in the cache)."""
    embedded = {g.name: gather(data.embedded.prints[g.name], data.cache, data.embedder)
                for g in data.groups}
    rows = {name: GroupRows(e.vectors, e.row_hashes) for name, e in embedded.items()}
    scores = split_scores(rows, data.embedder.key, data.cache, seed)
    return {name: (e, scores[name]) for name, e in embedded.items()}


@dataclass(frozen=True)
class Prepared:
    """INPUT scanned and --embeddings read: what a run needs before it writes anything."""

    scanned: ScannedInput
    vectors: VectorFile | None  # --embeddings, checked; None without it


def prepare(src: Path | str, config: SelectConfig, exclude: Sequence[Path] = (),
            kept: Collection[str] = (), exported: bool = False) -> Prepared:
    """Scan ``src`` and read --embeddings, refusing what no run could use, before anything is
    written: select calls it before it takes OUTPUT, so that a refusal leaves no trace.

    exclude: folders never scanned (OUTPUT); kept: paths an earlier selection kept (--keep);
    exported: the groups become OUTPUT's folders (select), so none may take the name of one of
    OUTPUT's own files.
    """
    if (local := local_root(src) or listing_file(src)) is not None:
        check_cache_apart(config.cache_path, input_path=local)
    scanned = scan_input(src, config.input_options(), exclude)
    _check_kept(scanned.groups, kept, config.keep)
    if exported:
        check_group_names(scanned.groups)
    if scanned.holds_bytes and config.mode in ("hardlink", "symlink"):
        raise UsageError(f"needs image files; {src} holds its images as bytes: choose copy or none",
                         option="mode")
    if scanned.holds_bytes and config.engine != "local":
        raise UsageError(f"{config.engine} cannot read the images {src} holds as bytes; choose local",
                         option="engine")
    return Prepared(scanned, _vector_file(config))


@contextmanager
def open_dataset(
    src: Path | str,
    config: SelectConfig,
    progress: Progress,
    exclude: Sequence[Path] = (),
    kept: Collection[str] = (),
    near: bool = True,
    prepared: Prepared | None = None,
) -> Iterator[Dataset]:
    """Scan ``src``, embed what the cache lacks (with config's engine), run the hygiene pass.

    exclude: folders never scanned (OUTPUT and its stage); kept: paths an earlier selection
    kept, never marked duplicates; near: whether to search near-duplicates (exact copies are
    always found); prepared: ``prepare``'s result, when the caller prepared already.
    """
    prepared = prepared or prepare(src, config, exclude, kept)
    scanned, vectors = prepared.scanned, prepared.vectors
    groups = scanned.groups
    with EmbeddingCache(config.cache_path) as cache:
        # The engine hashes, decodes and embeds; everything after reads the cache.
        if vectors is not None:
            embedder, embedded = embed_from_file(src, groups, vectors, cache, config, progress)
        else:
            embedder = Embedder(config.model_spec(), config.weights, config.device, config.backend,
                                precision=config.precision)  # the user's exported models
            embedded = run_embed_stage(
                config.engine, groups, cache, embedder,
                EmbedOptions(config.batch_size, config.workers, config.device, config.backend,
                             config.ray_address),
                progress)
        findings = hygiene_pass(groups, embedded.prints, cache, embedder, config.dup_threshold,
                                kept, decode_workers(config.workers), progress, near)
        yield Dataset(groups, embedder, cache, embedded, findings, scanned.write_selection)


def _check_kept(groups: Sequence[Group], kept: Collection[str], manifest: Path | None) -> None:
    """--keep: a manifest none of whose selected images was scanned is the wrong manifest, or the
    wrong INPUT (refused before anything is embedded); some missing, the dataset changed."""
    if not kept:
        return
    scanned = {f.rel for g in groups for f in g.files}
    missing = sum(p not in scanned for p in kept)
    if missing == len(kept):
        raise UsageError(f"{manifest}: none of the images it selected ({len(kept)}) is among those "
                         "scanned under INPUT; give the manifest of a selection from this INPUT",
                         option="keep")
    if missing:
        logger.warning("%d of the %d images %s selected are not among those scanned under INPUT "
                       "(removed, renamed or left out); the rest stay selected",
                       missing, len(kept), manifest)


def _vector_file(config: SelectConfig) -> VectorFile | None:
    """--embeddings, read and checked (repsample.embedding.vectors_file); None without it."""
    if config.embeddings is None:
        return None
    paths_file = config.embeddings_paths
    return read_vectors(Path(config.embeddings), Path(paths_file) if paths_file else None)


def embed_from_file(
    src: Path | str, groups: Sequence[Group], source: VectorFile, cache: EmbeddingCache,
    config: SelectConfig, progress: Progress,
) -> tuple[Embedder, EmbedStage]:
    """--embeddings: the file's vectors enter the cache under a key of their own (the file's
    digest), so that everything after reads them as it reads a model's. A file the vectors miss
    is embedded with the model (missing_vectors embed: the model must be the one that made
    them) or gets an error entry, which makes it an error row."""
    spec = _vectors_spec(source, config)
    weights = config.weights if config.missing_vectors == "embed" else "default"  # no model runs
    embedder = Embedder(spec, weights, config.device, config.backend, precision=config.precision)
    workers = decode_workers(config.workers)
    prints, seconds = fingerprint_groups(groups, cache, workers, progress)
    roots = [Path(src).absolute(), Path(src).resolve()] if isinstance(src, Path) else []
    rows = source.rows_by_key(roots)
    found: dict[str, int] = {}  # content hash -> row
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
    new = set(found) - cache.stored(list(found), embedder.key)
    cache.put_many(embedder.key, vectors=[(h, source.vectors[found[h]]) for h in sorted(new)])
    computed: dict[str, int] = {}
    for group in groups:
        t0 = time.perf_counter()
        todo = [(p, h) for p, h in missing[group.name] if h not in found]
        if config.missing_vectors == "embed":
            computed[group.name] = compute_missing(
                [p for p, _ in todo], [h for _, h in todo], embedder, cache, config.batch_size,
                workers, progress)
        else:
            no_vector = f"no vector in {source.path.name}"
            cache.put_many(embedder.key, errors=[(h, no_vector) for _, h in todo])
            computed[group.name] = 0
        seconds[group.name]["embed"] = time.perf_counter() - t0
    return embedder, EmbedStage(prints, computed, seconds)


def _vectors_spec(source: VectorFile, config: SelectConfig) -> ModelSpec:
    """What names the file's vectors in the cache and the run record: the file's digest; with
    missing_vectors embed, the model too (it fills the gaps, so it must give the same kind)."""
    name, identity = f"embeddings:{source.path}", f"embeddings-sha256-{source.digest}-{source.dim}d"
    model = config.model_spec()
    if config.missing_vectors == "embed":
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


def hygiene_pass(
    groups: Sequence[Group],
    prints: Mapping[str, Sequence[Fingerprint]],
    cache: EmbeddingCache,
    embedder: Embedder,
    threshold: float,
    kept: Collection[str] = (),
    workers: int = 2,
    progress: Progress | None = None,
    near: bool = True,
) -> Findings:
    """Find duplicates and leaks among already embedded groups (prints: per group, file order).

    near=False skips the near-duplicate search (a select that neither dedups nor drops leaks
    needs none): exact copies are still found, from the content hashes.
    """
    paths: list[str] = []
    names: list[str] = []
    hashes: list[str | None] = []
    errors: dict[int, str] = {}
    file_of: dict[str, Path | str] = {}
    for group in groups:
        for f, fp in zip(group.files, prints[group.name], strict=True):
            if fp.hash is None:
                errors[len(paths)] = fp.error or "cannot read file"
            else:
                file_of.setdefault(fp.hash, f.path)
            paths.append(f.rel)
            names.append(group.name)
            hashes.append(fp.hash)
    entries = cache.get_many([h for h in hashes if h], embedder.key)
    vectors = {h: e.vector for h, e in entries.items() if e.vector is not None}
    for i, h in enumerate(hashes):
        if h is not None and h not in vectors:
            entry = entries.get(h)
            errors[i] = (entry.error if entry else None) or "not embedded"
    kept_files = [i for i, p in enumerate(paths) if p in kept]

    def search(distinct: list[str], X: np.ndarray) -> Pairs:
        if not near:
            return Pairs.empty()
        return near_duplicates(distinct, X, threshold, embedder.key, cache, file_of, workers, progress)

    findings = find(paths, names, hashes, vectors, errors, threshold, kept_files, search, progress)
    return dataclasses.replace(findings, near_searched=near)
