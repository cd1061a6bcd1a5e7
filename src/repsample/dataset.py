"""The dataset as both orchestrators (select, check) see it: groups scanned, every image
fingerprinted and embedded (or found in the cache), and what the hygiene pass found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repsample.cache import EmbeddingCache
from repsample.config import SelectConfig
from repsample.embed import Embedder, decode_workers
from repsample.engines import EmbedOptions, EmbedStage, run_embed_stage
from repsample.fingerprint import Fingerprint
from repsample.hygiene import Findings, find
from repsample.hygiene.near import Pairs
from repsample.hygiene.pairs import near_duplicates
from repsample.progress import Progress
from repsample.scan import Group, scan


@dataclass(frozen=True)
class Dataset:
    """An embedded dataset; ``cache`` stays open while the ``open_dataset`` block runs."""

    groups: list[Group]
    embedder: Embedder
    cache: EmbeddingCache
    embedded: EmbedStage
    findings: Findings


@contextmanager
def open_dataset(
    src: Path | str,
    config: SelectConfig,
    progress: Progress,
    exclude: Sequence[Path] = (),
    kept: Collection[str] = (),
    near: bool = True,
) -> Iterator[Dataset]:
    """Scan ``src``, embed what the cache lacks (with config's engine), run the hygiene pass.

    exclude: folders never scanned (OUTPUT and its stage); kept: paths an earlier selection
    kept, never marked duplicates; near: whether to search near-duplicates (exact copies are
    always found).
    """
    groups = scan(src, config.extensions, config.groups, follow_symlinks=config.follow_symlinks,
                  exclude=tuple(exclude))
    embedder = Embedder(config.model, config.weights, config.device, config.backend,
                        precision=config.precision)  # the user's exported models
    with EmbeddingCache(config.cache_path) as cache:
        # The engine hashes, decodes and embeds; everything after reads the cache.
        embedded = run_embed_stage(
            config.engine, groups, cache, embedder,
            EmbedOptions(config.batch_size, config.workers, config.device, config.backend,
                         config.ray_address),
            progress)
        findings = hygiene_pass(groups, embedded.prints, cache, embedder, config.dup_threshold,
                                kept, decode_workers(config.workers), progress, near)
        yield Dataset(groups, embedder, cache, embedded, findings)


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
