"""The kernel that selection, weights and their measures share: a Gaussian of the distance,
``k(x, y) = exp(-|x - y|^2 / (2 l^2))``, with the length scale ``l = sqrt(median squared
distance / 2)`` over a seeded sample (the median heuristic as coreax and Garreau et al. state it).

The rule was measured against the median distance itself (v0.2's herding): on coreax's blobs
benchmark, refinement with this scale reaches 3-4x lower MMD under the benchmark's own kernel, and
on real embeddings it keeps more small modes (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

SCALE_SAMPLE = 1000
"""Rows the median is taken over (coreax's benchmark: 1,000)."""


def length_scale(X: np.ndarray, seed: int = 0, sample: int = SCALE_SAMPLE) -> float:
    """sqrt(median squared pairwise distance / 2) over a seeded sample of ``sample`` rows (all
    rows up to that many); 1.0 where every row is the same."""
    X = np.asarray(X)
    n = len(X)
    rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if n > sample \
        else np.arange(n)
    d2 = squared_distances(X[rows], X[rows])
    upper = d2[np.triu_indices(len(rows), 1)]
    median = float(np.median(upper)) if len(upper) else 0.0
    return float(np.sqrt(median / 2)) if median > 0 else 1.0


def squared_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """|a - b|^2 for every row pair, in A's float type, from one product of rows centred on B's
    mean (distances unchanged, norms small: less is lost in a.a - 2a.b + b.b); never below 0."""
    centre = B.mean(axis=0) if len(B) else 0.0
    A, B = A - centre, B - centre
    d2: np.ndarray = A @ B.T
    d2 *= -2
    d2 += np.einsum("ij,ij->i", A, A)[:, None]
    d2 += np.einsum("ij,ij->i", B, B)[None, :]
    np.maximum(d2, 0, out=d2)
    return d2


def gaussian(A: np.ndarray, B: np.ndarray, scale: float) -> np.ndarray:
    """k(a, b) for every row of A against every row of B."""
    d2 = squared_distances(A, B)
    d2 *= -1 / (2 * scale**2)
    np.exp(d2, out=d2)
    return d2


def mean_embedding(X: np.ndarray, rows: np.ndarray, reference: np.ndarray, scale: float,
                   block: int = 2048) -> np.ndarray:
    """mean_j k(X[i], reference_j) for each i in ``rows`` (float64), in blocks of rows so that
    memory stays at block x len(reference)."""
    out = np.empty(len(rows))
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        out[start : start + len(part)] = gaussian(X[part], reference, scale).mean(axis=1, dtype=np.float64)
    return out
