"""Near-duplicate pairs of contents: candidates from the embeddings (near.py), confirmed by the
pixels (confirm.py), and remembered in the cache under the contents and settings that made them,
so a rerun on unchanged data neither searches nor decodes again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from repsample.cache import ContentCache, content_key
from repsample.embedding.descriptor import DESCRIPTOR_KEY
from repsample.embedding.neighbours import SEARCH_KEY
from repsample.hygiene import confirm, near
from repsample.hygiene.near import Pairs, candidate_pairs, confirmed
from repsample.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

VERSION = 1  # bump when the search or the confirmation changes its answer


def pairs_key(vectors: str, contents: Sequence[str], threshold: float) -> str:
    """Names the confirmed pairs: what decides them besides the contents themselves."""
    settings = (f"near-duplicates|v{VERSION}|{vectors}|{threshold!r}|{near.NEIGHBOURS}|{SEARCH_KEY}|"
                f"{DESCRIPTOR_KEY}|"
                f"{confirm.MAX_DISTANCE}|{confirm.MAX_COLOUR_SHIFT}|{confirm.MIN_CORRELATION}")
    return content_key(settings, contents)


def near_duplicates(
    contents: list[str],
    X: np.ndarray,
    threshold: float,
    vectors: str,
    cache: ContentCache,
    files: Mapping[str, Path | str],
    workers: int = 2,
    progress: Progress | None = None,
) -> Pairs:
    """Confirmed pairs among ``contents`` (rows of X; vectors names the model that made X).

    files: one readable file per content, decoded only for contents in a candidate pair.
    """
    key = pairs_key(vectors, contents, threshold)
    remembered = cache.recall(key, _from_bytes, "near-duplicate pairs", "searching again")
    if remembered is not None:
        bar = (progress or SilentProgress()).stage("check", 1)  # the stage shows, done at once
        bar.advance()
        bar.close()
        return remembered
    candidates = candidate_pairs(X, threshold, progress=progress)
    pairs = confirmed(candidates, confirm.Verifier(contents, files, cache, workers))
    logger.info("near-duplicates: %d candidate pairs, %d confirmed", len(candidates), len(pairs))
    cache.put_blob(key, _to_bytes(pairs))
    return pairs


def _to_bytes(pairs: Pairs) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, first=pairs.first, second=pairs.second, similarity=pairs.similarity)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> Pairs | None:
    """The stored pairs; None when their arrays disagree."""
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        pairs = Pairs(stored["first"].astype(np.int64), stored["second"].astype(np.int64),
                      stored["similarity"].astype(np.float32))
    return pairs if len(pairs.first) == len(pairs.second) == len(pairs.similarity) else None
