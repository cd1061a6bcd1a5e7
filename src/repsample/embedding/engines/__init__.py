"""Engines: who runs the fingerprint, decode and embed stages.

``local`` runs them in this process (threads for hashing and for decoding);
``ray`` runs them as a Ray Data pipeline over a cluster (or a local Ray). Both fill the same
embedding cache, so everything after the embed stage is shared and gives identical results.
This module only dispatches; what the engines share is in ``common``.
"""

from __future__ import annotations

from collections.abc import Sequence

from repsample.cache import ContentCache
from repsample.embedding.embed import Embedder
from repsample.embedding.engines.common import EmbedOptions, EmbedStage
from repsample.inputs.folder import Group
from repsample.params import check_choice
from repsample.progress import Progress

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "EmbedOptions", "EmbedStage", "check_engine", "run_embed_stage"]


def check_engine(engine: str) -> None:
    check_choice("engine", engine, ENGINES)


def run_embed_stage(
    engine: str,
    groups: Sequence[Group],
    cache: ContentCache,
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
