"""The dataset as both orchestrators (select, check) see it: groups scanned, every image
fingerprinted and embedded (or found in the cache), and what the hygiene pass found.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repsample.cache import ContentCache
from repsample.config import SelectConfig
from repsample.embedding.embed import Embedded, Embedder, gather
from repsample.embedding.engines import EmbedOptions, EmbedStage, run_embed_stage
from repsample.embedding.fingerprint import Fingerprint
from repsample.embedding.vectors_file import FillOptions, VectorFile, embed_from_file, read_vectors
from repsample.errors import UsageError
from repsample.hygiene.findings import Findings, find
from repsample.hygiene.near import Pairs
from repsample.hygiene.outliers import GroupRows, ImageScores, split_scores
from repsample.hygiene.pairs import near_duplicates
from repsample.hygiene.quality import GroupQuality, assess_group, quality_vectors
from repsample.inputs.dispatch import ScannedInput, SelectionWriter, listing_file, local_root, scan_input
from repsample.inputs.folder import Group
from repsample.inputs.guards import check_cache_apart
from repsample.output.layout import check_group_names
from repsample.progress import Progress, timed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """An embedded dataset; ``cache`` stays open while the ``open_dataset`` block runs."""

    groups: list[Group]
    embedder: Embedder
    cache: ContentCache
    embedded: EmbedStage
    findings: Findings
    quality: dict[str, GroupQuality]  # per group, by row of its embedded images
    quality_measured: int  # contents whose quality was measured after the embed stage (0: none)
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
    # --workers is settled here, once, into the threads every stage below is handed.
    options = EmbedOptions(config.batch_size, config.workers, config.device, config.backend,
                           config.ray_address)
    with ContentCache(config.cache_path) as cache:
        # The engine hashes, decodes and embeds; everything after reads the cache.
        if vectors is not None:
            fill = FillOptions(config.model_spec(), config.missing_vectors, config.weights,
                               config.precision)
            embedder, embedded = embed_from_file(src, groups, vectors, cache, fill, options, progress)
        else:
            embedder = Embedder(config.model_spec(), config.weights, config.device, config.backend,
                                precision=config.precision)  # the user's exported models
            embedded = run_embed_stage(config.engine, groups, cache, embedder, options, progress)
        with timed("duplicates"):
            findings = hygiene_pass(groups, embedded.prints, cache, embedder, config.dup_threshold,
                                    kept, options.threads, progress, near)
        with timed("quality"):
            quality, measured = quality_pass(groups, embedded.prints, findings, cache,
                                             options.threads, progress)
        yield Dataset(groups, embedder, cache, embedded, findings, quality, measured,
                      scanned.write_selection)


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


def hygiene_pass(
    groups: Sequence[Group],
    prints: Mapping[str, Sequence[Fingerprint]],
    cache: ContentCache,
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


def quality_pass(
    groups: Sequence[Group],
    prints: Mapping[str, Sequence[Fingerprint]],
    findings: Findings,
    cache: ContentCache,
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[dict[str, GroupQuality], int]:
    """Each group's image quality issues, by row of its embedded images (files in
    ``hygiene_pass``'s order; a row is a file the findings give no error), and how many
    contents had to be measured here (those the embed stage did not decode)."""
    rows: dict[str, list[str]] = {}
    paths: dict[str, Path | str] = {}
    f = 0
    for group in groups:
        hashes = rows.setdefault(group.name, [])
        for file, fp in zip(group.files, prints[group.name], strict=True):
            if f not in findings.errors and fp.hash is not None:
                hashes.append(fp.hash)
                paths.setdefault(fp.hash, file.path)
            f += 1
    vectors, measured = quality_vectors(paths, cache, workers, progress)
    return {name: assess_group([vectors.get(h) for h in hashes]) for name, hashes in rows.items()}, measured
