"""Engines: who runs the fingerprint, decode and embed stages.

``local`` runs them in this process (threads for hashing and for decoding);
``ray`` runs them as a Ray Data pipeline over a cluster (or a local Ray). Both fill the same
embedding cache, so everything after the embed stage is shared and gives identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repsample.cache import EmbeddingCache
from repsample.embedding.embed import Embedder
from repsample.embedding.fingerprint import Fingerprint
from repsample.inputs.folder import Group
from repsample.params import check_choice
from repsample.progress import Progress

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EmbedOptions:
    """What the engines need from SelectConfig (kept narrow so the engines don't depend on it)."""

    batch_size: int = 64
    workers: int | None = None
    """local: decoding threads; ray: model actors (None: one per CPU, or per GPU)."""
    device: str = "auto"
    """As asked for (auto, cpu, cuda): Ray workers resolve it on their own node."""
    backend: str = "auto"
    ray_address: str | None = None


@dataclass(frozen=True)
class EmbedStage:
    """Per group: each file's fingerprint, how many contents were embedded now, stage seconds."""

    prints: dict[str, list[Fingerprint]]
    computed: dict[str, int]
    seconds: dict[str, dict[str, float]]


def check_engine(engine: str) -> None:
    check_choice("engine", engine, ENGINES)


def run_embed_stage(
    engine: str,
    groups: Sequence[Group],
    cache: EmbeddingCache,
    embedder: Embedder,
    options: EmbedOptions,
    progress: Progress,
) -> EmbedStage:
    """Fingerprint every file and put every missing embedding into the cache."""
    check_engine(engine)
    if engine == "ray":
        from repsample.embedding.engines.ray import run

        return run(groups, cache, embedder, options, progress)
    from repsample.embedding.engines.local import run as run_local

    return run_local(groups, cache, embedder, options, progress)
