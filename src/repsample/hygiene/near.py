"""Near-duplicates: every pair of embeddings whose cosine similarity reaches a threshold.

The search is exact and blocked: rows are unit-normalised once, then the upper triangle of the
similarity matrix is computed one ``block x block`` tile at a time and only the pairs above the
threshold are kept, so memory is the embeddings plus one tile, never an n x n matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repsample.progress import Progress, SilentProgress

DEFAULT_BLOCK = 2048


@dataclass(frozen=True)
class Pairs:
    """Pairs (first[k], second[k]) of row numbers, first < second, with their similarity."""

    first: np.ndarray  # int64
    second: np.ndarray  # int64
    similarity: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.first)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); an all-zero row stays zero and matches nothing."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out: np.ndarray = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return out


def similar_pairs(
    X: np.ndarray,
    threshold: float,
    block: int = DEFAULT_BLOCK,
    progress: Progress | None = None,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Pairs:
    """All pairs of rows of X with cosine similarity >= threshold, by blocked matrix products.

    keep(first, second) -> mask filters each tile's candidates as they come, so memory holds
    only the pairs kept, however many candidates a uniform dataset gives.
    """
    U = unit_rows(X)
    n = len(U)
    starts = range(0, n, block)
    bar = (progress or SilentProgress()).stage("check", len(starts) * (len(starts) + 1) // 2)
    firsts, seconds, sims = [], [], []
    for a in starts:
        rows = U[a : a + block]
        for b in range(a, n, block):
            tile = rows @ U[b : b + block].T
            if a == b:
                tile = np.triu(tile, k=1)  # each pair once, never a row with itself
            i, j = np.nonzero(tile >= threshold)
            sim = tile[i, j]
            i, j = i + a, j + b
            if keep is not None and len(i):
                mask = keep(i, j)
                i, j, sim = i[mask], j[mask], sim[mask]
            firsts.append(i)
            seconds.append(j)
            sims.append(sim)
            bar.advance()
    bar.close()
    if not firsts:
        empty = np.empty(0, np.int64)
        return Pairs(empty, empty.copy(), np.empty(0, np.float32))
    return Pairs(np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64),
                 np.concatenate(sims).astype(np.float32))
