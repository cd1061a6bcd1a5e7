"""Per-image scores within a group: how typical, how unusual, how unique; and its outliers.

Every score is computed on one group's embeddings (its valid images, whatever dedup or
--drop-outliers later decide), scaled to unit length (so distances order like cosine
similarities: 0 for the same direction, 2 for opposite ones), from one nearest-neighbour search:

- typicality: 1 / mean distance to the 20 nearest other images (TypiClust's); higher = denser,
  more typical.
- outlier score: the distance to the 10th nearest other image; higher = more unusual.
  bench/outliers.py chose it among the scorers in ``OUTLIER_SCORERS`` (docs/benchmarks.md): a
  10-image neighbourhood is one that a handful of misfiled look-alikes cannot fill by themselves.
- uniqueness: the distance to the nearest other image; higher = more unique, 0 for an exact copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repsample.scores import knn

NEIGHBOURS = 20
"""K: neighbours typicality and LOF look at (capped at the group's size - 1)."""
OUTLIER_NEIGHBOUR = 10
"""The outlier score is the distance to this nearest neighbour (the K-th when fewer)."""
LISTED_SHARE = 0.03
"""`repsample check` lists the top 3 % of each group by outlier score: the share
bench/outliers.py measures precision and recall at."""
_TINY = 1e-12


@dataclass(frozen=True)
class Neighbours:
    """Each row's K nearest other rows: distances (ascending) and indices."""

    distances: np.ndarray  # (n, K)
    indices: np.ndarray  # (n, K)

    @classmethod
    def of(cls, X: np.ndarray, k: int = NEIGHBOURS) -> Neighbours:
        dist, ind = knn(X, k)
        return cls(dist, ind)

    @property
    def k(self) -> int:
        return int(self.distances.shape[1])


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.asarray(X / np.where(norms > 0, norms, 1))


def knn_distance(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """Distance to the OUTLIER_NEIGHBOUR-th nearest neighbour."""
    return np.asarray(nn.distances[:, min(OUTLIER_NEIGHBOUR, nn.k) - 1], dtype=np.float64)


def local_outlier_factor(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """LOF (Breunig et al. 2000): the neighbours' mean local reachability density over the image's.

    Exact copies are lifted to a tiny distance so that a density stays finite.
    """
    reach = np.maximum(nn.distances, nn.distances[nn.indices, -1])
    density = 1.0 / (reach.mean(axis=1) + _TINY)
    return np.asarray(density[nn.indices].mean(axis=1) / density)


def isolation_depth(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """Isolation forest (Liu et al. 2008), 200 seeded trees: shallower isolation = more unusual."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=200, random_state=seed).fit(X)
    return np.asarray(-forest.score_samples(X))


def centroid_distance(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """Distance to the group's mean embedding."""
    return np.asarray(np.linalg.norm(X - X.mean(axis=0), axis=1))


Scorer = Callable[[np.ndarray, Neighbours, int], np.ndarray]
OUTLIER_SCORERS: dict[str, Scorer] = {
    "knn": knn_distance,
    "lof": local_outlier_factor,
    "iforest": isolation_depth,
    "centroid": centroid_distance,
}
"""Outlier scores on (embeddings, their neighbours, seed); higher = more unusual."""
DEFAULT_SCORER = "knn"


@dataclass(frozen=True)
class ImageScores:
    """One group's scores, a value per row of its embedding matrix (NaN: too few images)."""

    typicality: np.ndarray
    outlier: np.ndarray
    uniqueness: np.ndarray

    def top_outliers(self, share: float, protected: frozenset[int] = frozenset()) -> list[int]:
        """Rows of the top ``share`` of the group by outlier score (round half up), most unusual
        first, ties to the lower row, less the ``protected`` ones (an earlier selection's)."""
        quota = int(share * len(self.outlier) + 0.5)
        if quota == 0 or np.isnan(self.outlier).all():
            return []
        order = np.argsort(-self.outlier, kind="stable")[:quota]
        return [int(r) for r in order if int(r) not in protected]


def image_scores(X: np.ndarray, seed: int = 42, scorer: str = DEFAULT_SCORER) -> ImageScores:
    """Typicality, outlier score and uniqueness of every row of X (one group's embeddings)."""
    U = unit_rows(X)
    nn = Neighbours.of(U)
    if nn.k == 0:  # a lone image has no neighbour to be compared with
        empty = np.full(len(U), np.nan)
        return ImageScores(empty, empty.copy(), empty.copy())
    return ImageScores(
        typicality=1.0 / (nn.distances.mean(axis=1) + _TINY),
        outlier=OUTLIER_SCORERS[scorer](U, nn, seed),
        uniqueness=nn.distances[:, 0].astype(np.float64),
    )
