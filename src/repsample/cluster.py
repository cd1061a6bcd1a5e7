"""Cluster: KMeans for every k in a range, the k with the best silhouette wins.

Bounded where the original was not: k never exceeds the number of distinct points minus one,
and above ``silhouette_sample`` points the silhouette is computed on a seeded sample of that
size instead of all n^2 pairs.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clustering:
    """The chosen partition and the evidence for it."""

    k: int
    labels: np.ndarray  # (n,) int
    centers: np.ndarray  # (k, dim)
    silhouettes: dict[int, float] = field(default_factory=dict)  # every k tried
    silhouette_sample: int | None = None  # points the silhouette used, None = all


def count_distinct(X: np.ndarray) -> int:
    return int(np.unique(X, axis=0).shape[0]) if len(X) else 0


def k_range(n_distinct: int, k_min: int, k_max: int) -> range:
    """The ks worth trying: silhouette needs 2 <= k <= distinct points - 1."""
    hi = min(k_max, n_distinct - 1)
    lo = max(2, min(k_min, hi))
    return range(lo, hi + 1) if hi >= 2 else range(0)


def fit_kmeans(X: np.ndarray, k: int, seed: int) -> KMeans:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicates: fewer distinct centres
        return KMeans(n_clusters=k, random_state=seed).fit(X)


def choose_k(
    X: np.ndarray, k_min: int = 5, k_max: int = 20, seed: int = 42, silhouette_sample: int = 3000
) -> Clustering:
    """Cluster X with the k in [k_min, k_max] whose silhouette is best (first best on ties)."""
    X = np.asarray(X)
    n = len(X)
    ks = k_range(count_distinct(X), k_min, k_max)
    if not ks:
        return Clustering(1, np.zeros(n, dtype=np.int64), X.mean(axis=0, keepdims=True))
    sample = silhouette_sample if n > silhouette_sample else None
    best: tuple[float, KMeans] | None = None
    scores: dict[int, float] = {}
    for k in ks:
        km = fit_kmeans(X, k, seed)
        if len(np.unique(km.labels_)) < 2:
            continue
        try:
            score = float(silhouette_score(X, km.labels_, sample_size=sample, random_state=seed))
        except ValueError:  # the sample drew a single cluster
            continue
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, km)
    if best is None:
        return Clustering(1, np.zeros(n, dtype=np.int64), X.mean(axis=0, keepdims=True), scores)
    km = best[1]
    return Clustering(
        int(km.n_clusters), km.labels_.astype(np.int64), km.cluster_centers_, scores, sample
    )
