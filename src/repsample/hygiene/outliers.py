"""Per-image scores within a group: how typical, how unusual, how unique; and its outliers.

Every score is computed on one group's embeddings (its valid images, whatever dedup or
--drop-outliers later decide), scaled to unit length (so distances order like cosine
similarities: 0 for the same direction, 2 for opposite ones), from one nearest-neighbour search
(near.py's: exact up to 50,000 images, approximate above):

- typicality: 1 / mean distance to the 20 nearest other images (TypiClust's); higher = denser,
  more typical.
- outlier score: the distance to the 10th nearest other image; higher = more unusual.
  bench/outliers.py chose it among the scorers in ``OUTLIER_SCORERS`` (docs/benchmarks.md).
- uniqueness: the distance to the nearest other image; higher = more unique, 0 for an exact copy.

The scores are remembered in the cache under the group's contents, so a rerun does not search.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from repsample.cache import EmbeddingCache
from repsample.hygiene.near import EXACT_UP_TO, nearest_rows, unit_rows

logger = logging.getLogger(__name__)

VERSION = 1  # bump when a score changes its values
NEIGHBOURS = 20
"""K: neighbours typicality and LOF look at (capped at the group's size - 1)."""
OUTLIER_NEIGHBOUR = 10
"""The outlier score is the distance to this nearest neighbour (the K-th when fewer)."""
LISTED_SHARE = 0.03
"""`repsample check` lists the top 3 % of each group by outlier score: the share
bench/outliers.py measures precision and recall at."""
_TINY = 1e-12
_SAME = 1e-6  # squared distances below this are float32 rounding of an exact copy's: 0


@dataclass(frozen=True)
class Neighbours:
    """Each row's K nearest other rows: distances (ascending) and row numbers."""

    distances: np.ndarray  # (n, K)
    indices: np.ndarray  # (n, K)

    @classmethod
    def of(cls, U: np.ndarray, k: int = NEIGHBOURS) -> Neighbours:
        """The neighbours of unit-length rows, by Euclidean distance (sqrt(2 - 2 cosine))."""
        k = min(k, len(U) - 1)
        if k < 1:
            return cls(np.zeros((len(U), 0)), np.zeros((len(U), 0), dtype=np.int64))
        similarity, rows = nearest_rows(U, k)
        squared = 2.0 - 2.0 * np.clip(similarity.astype(np.float64), -1.0, 1.0)
        squared[squared < _SAME] = 0.0
        return cls(np.sqrt(squared), np.where(rows >= 0, rows, np.arange(len(U))[:, None]))

    @property
    def k(self) -> int:
        return int(self.distances.shape[1])


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
        uniqueness=nn.distances[:, 0].copy(),
    )


def row_contents(hashes: Sequence[str | None], rows: Sequence[int | None]) -> list[str]:
    """The content hash of each row of a group's embedding matrix, from its files' hashes and
    rows (None: the file has no vector)."""
    return [h for h, r in zip(hashes, rows, strict=True) if r is not None and h is not None]


def scores_key(vectors: str, contents: Sequence[str], seed: int) -> str:
    """Names a group's scores: the model's key, each row's content, the settings."""
    digest = hashlib.sha256(f"image-scores|v{VERSION}|{vectors}|{DEFAULT_SCORER}|{NEIGHBOURS}|"
                            f"{OUTLIER_NEIGHBOUR}|{EXACT_UP_TO}|{seed}".encode())
    for content in contents:
        digest.update(content.encode() + b"\n")
    return digest.hexdigest()


def group_scores(X: np.ndarray, contents: Sequence[str], vectors: str, cache: EmbeddingCache,
                 seed: int) -> ImageScores:
    """image_scores of one group's rows (contents: each row's content hash, vectors: the model's
    key), or their stored copy for the same rows and settings."""
    key = scores_key(vectors, contents, seed)
    stored = cache.get_blob(key)
    if stored is not None:
        try:
            with np.load(io.BytesIO(stored)) as z:
                scores = ImageScores(z["typicality"], z["outlier"], z["uniqueness"])
            if all(len(a) == len(X) for a in (scores.typicality, scores.outlier, scores.uniqueness)):
                return scores
        except Exception:  # numpy and zipfile raise many types; a damaged entry is a lost shortcut
            pass
        logger.warning("stored image scores unreadable; computing them again")
    scores = image_scores(X, seed)
    buffer = io.BytesIO()
    np.savez(buffer, typicality=scores.typicality, outlier=scores.outlier,
             uniqueness=scores.uniqueness)
    cache.put_blob(key, buffer.getvalue())
    return scores
