"""The local engine: hash and decode with threads, embed in this process."""

from __future__ import annotations

import time
from collections.abc import Sequence

from repsample.cache import ContentCache
from repsample.embedding.embed import Embedder, batch_buffers, compute_missing
from repsample.embedding.engines.common import EmbedOptions, EmbedStage
from repsample.embedding.fingerprint import fingerprint_groups
from repsample.inputs.folder import Group
from repsample.progress import Progress


def run(
    groups: Sequence[Group],
    cache: ContentCache,
    embedder: Embedder,
    options: EmbedOptions,
    progress: Progress,
) -> EmbedStage:
    prints, seconds = fingerprint_groups(groups, cache, options.threads, progress)
    computed: dict[str, int] = {}
    hashes = [fp.hash for g in groups for fp in prints[g.name] if fp.hash]
    progress.expect("embed", len(hashes))
    buffers = None
    if len(cache.stored(hashes, embedder.key)) < len(set(hashes)):
        embedder.load()  # a model that cannot be had fails here, before OUTPUT is touched
        buffers = batch_buffers(embedder.spec.preprocess, options.batch_size)  # one set for every group
    for group in groups:
        t0 = time.perf_counter()
        pairs = zip(group.files, prints[group.name], strict=True)
        readable = [(f.path, fp.hash) for f, fp in pairs if fp.hash]
        computed[group.name] = compute_missing(
            [p for p, _ in readable], [h for _, h in readable], embedder, cache,
            options.batch_size, options.threads, progress, buffers)
        seconds[group.name]["embed"] = time.perf_counter() - t0
    return EmbedStage(prints, computed, seconds)
