"""Per-image scores within a group: how typical, how unusual, how unique; and its outliers.

Every score is computed on one group's embeddings (its valid images, whatever dedup or
--drop-outliers later decide), scaled to unit length (so distances order like cosine
similarities: 0 for the same direction, 2 for opposite ones), from nearest-neighbour searches
(embedding.neighbours: exact up to 50,000 images, approximate above):

- typicality: 1 / mean distance to the 20 nearest other images (TypiClust's, defined once in
  embedding.neighbours; TypicalSelector applies it among a cluster's rows as the selector sees
  them); higher = denser, more typical.
- outlier score: the distance to the 10th nearest other image of the group, times the mean
  distance to its 3 nearest images of the group over that to its 3 nearest images of the other
  groups of its split (as kNN label-noise detectors compare an image with its own class and the
  others: a misfiled image lies closer to another folder than to its own); higher = more
  unusual. A group alone in its split keeps the first factor. bench/outliers.py chose it among
  the scorers in ``OUTLIER_SCORERS`` (docs/benchmarks.md).
- uniqueness: the distance to the nearest other image; higher = more unique, 0 for an exact copy.

A split's groups are scored together: one index over the split's rows, and per group one search
of its own rows and one of the rest of the split. The scores are remembered in the cache under the
group's contents and those of the rest of its split, so a rerun does not search, and a change in
another group of the split scores the group again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from repsample.cache import ContentCache, content_key
from repsample.embedding.neighbours import EXACT_UP_TO, nearest_outside, nearest_rows, typicality, unit_rows
from repsample.hygiene.leaks import split_of

logger = logging.getLogger(__name__)

VERSION = 2  # bump when a score changes its values
NEIGHBOURS = 20
"""K: neighbours typicality and LOF look at (capped at the group's size - 1)."""
OUTLIER_NEIGHBOUR = 10
"""The outlier score is the distance to this nearest neighbour (the K-th when fewer)."""
ACROSS = 3
"""The outlier score's second factor compares the mean distances to this many nearest images of
the group and of the other groups of its split."""
LISTED_SHARE = 0.03
"""`repsample check` lists the top 3 % of each group by outlier score: the share
bench/outliers.py measures precision and recall at."""
_TINY = 1e-12
_SAME = 1e-6  # squared distances below this are float32 rounding of an exact copy's: 0
_NEAR = 1e-3  # added to both sides of the cross-group ratio: an exact copy elsewhere stays finite


def _distances(similarity: np.ndarray) -> np.ndarray:
    """Euclidean distances of unit-length rows from their cosine similarities: sqrt(2 - 2 cos)."""
    squared = 2.0 - 2.0 * np.clip(similarity.astype(np.float64), -1.0, 1.0)
    squared[squared < _SAME] = 0.0
    return np.sqrt(squared)


@dataclass(frozen=True)
class Neighbours:
    """Each row's K nearest other rows: distances (ascending) and row numbers; and the distances
    to its nearest rows of the other groups of its split (None: the group is alone in it)."""

    distances: np.ndarray  # (n, K)
    indices: np.ndarray  # (n, K)
    elsewhere: np.ndarray | None = None  # (n, ACROSS at most)

    @classmethod
    def of(cls, U: np.ndarray, k: int = NEIGHBOURS, elsewhere: np.ndarray | None = None) -> Neighbours:
        """The neighbours of unit-length rows, by Euclidean distance."""
        k = min(k, len(U) - 1)
        if k < 1:
            return cls(np.zeros((len(U), 0)), np.zeros((len(U), 0), dtype=np.int64), elsewhere)
        similarity, rows = nearest_rows(U, k)
        return cls(_distances(similarity), np.where(rows >= 0, rows, np.arange(len(U))[:, None]),
                   elsewhere)

    @property
    def k(self) -> int:
        return int(self.distances.shape[1])


def knn_distance(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """Distance to the OUTLIER_NEIGHBOUR-th nearest neighbour."""
    return np.asarray(nn.distances[:, min(OUTLIER_NEIGHBOUR, nn.k) - 1], dtype=np.float64)


def cross_group_knn(X: np.ndarray, nn: Neighbours, seed: int) -> np.ndarray:
    """knn_distance times the mean distance to the ACROSS nearest rows of the group over that to
    the ACROSS nearest of the other groups of its split (1 where there is none)."""
    within = knn_distance(X, nn, seed)
    if nn.elsewhere is None or nn.elsewhere.shape[1] == 0:
        return within
    k = min(ACROSS, nn.k, nn.elsewhere.shape[1])
    ratio = (nn.distances[:, :k].mean(axis=1) + _NEAR) / (nn.elsewhere[:, :k].mean(axis=1) + _NEAR)
    return np.asarray(within * ratio)


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
    "knn-cross": cross_group_knn,
    "knn": knn_distance,
    "lof": local_outlier_factor,
    "iforest": isolation_depth,
    "centroid": centroid_distance,
}
"""Outlier scores on (embeddings, their neighbours, seed); higher = more unusual. Only knn-cross
looks at the other groups of the split."""
DEFAULT_SCORER = "knn-cross"


@dataclass(frozen=True)
class ImageScores:
    """One group's scores, a value per row of its embedding matrix (NaN: too few images)."""

    typicality: np.ndarray
    outlier: np.ndarray
    uniqueness: np.ndarray

    def top_outliers(self, share: float, protected: frozenset[int] = frozenset()) -> list[int]:
        """Rows of the top ``share`` of the group by outlier score (round half up), most unusual
        first, ties to the lower row, less the ``protected`` ones (an earlier selection's).

        A share below 1 never takes the whole group: rounding 0.999 of 40 images up to 40 would
        leave nothing to select, so the quota stops one image short of it.
        """
        quota = int(share * len(self.outlier) + 0.5)
        if share < 1:
            quota = min(quota, len(self.outlier) - 1)
        if quota <= 0 or np.isnan(self.outlier).all():
            return []
        order = np.argsort(-self.outlier, kind="stable")[:quota]
        return [int(r) for r in order if int(r) not in protected]


def image_scores(X: np.ndarray, seed: int = 42, scorer: str = DEFAULT_SCORER,
                 others: np.ndarray | None = None) -> ImageScores:
    """Typicality, outlier score and uniqueness of every row of X (one group's embeddings);
    others: the embeddings of the other groups of its split."""
    U = unit_rows(X)
    return _scores(U, distances_elsewhere(U, others), seed, scorer)


def distances_elsewhere(U: np.ndarray, others: np.ndarray | None) -> np.ndarray | None:
    """The distances of unit-length rows U to their ACROSS nearest rows of others (the other
    groups of their split, scaled to unit length here); None without any."""
    if others is None or not len(others) or not len(U):
        return None
    return _elsewhere(np.concatenate([U, unit_rows(others)]), [(0, len(U))])[0]


def _scores(U: np.ndarray, elsewhere: np.ndarray | None, seed: int,
            scorer: str = DEFAULT_SCORER) -> ImageScores:
    nn = Neighbours.of(U, elsewhere=elsewhere)
    if nn.k == 0:  # a lone image has no neighbour to be compared with
        empty = np.full(len(U), np.nan)
        return ImageScores(empty, empty.copy(), empty.copy())
    return ImageScores(
        typicality=typicality(nn.distances),
        outlier=OUTLIER_SCORERS[scorer](U, nn, seed),
        uniqueness=nn.distances[:, 0].copy(),
    )


def _elsewhere(U: np.ndarray, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """For each span of U's rows (a group in its split's rows), the distances of each of its
    rows to its ACROSS nearest rows outside the span (fewer where fewer lie outside it)."""
    ks = [min(ACROSS, len(U) - (stop - start)) for start, stop in spans]
    found: dict[int, np.ndarray] = {}
    for k in sorted(set(ks)):  # one search for all, but where a group is nearly the whole split
        at = [i for i, ki in enumerate(ks) if ki == k]
        for i, (similarity, _) in zip(at, nearest_outside(U, [spans[i] for i in at], k), strict=True):
            found[i] = _distances(similarity)
    return [found[i] for i in range(len(spans))]


def scores_key(vectors: str, contents: Sequence[str], seed: int, rest: Sequence[str] = ()) -> str:
    """Names a group's scores: the model's key, each row's content, the settings, and the digests
    of the other groups of its split (rest, in any order: only their rows count)."""
    settings = (f"image-scores|v{VERSION}|{vectors}|{DEFAULT_SCORER}|{NEIGHBOURS}|"
                f"{OUTLIER_NEIGHBOUR}|{ACROSS}|{EXACT_UP_TO}|{seed}")
    return content_key("", [settings, content_key("", contents), *sorted(rest)])


@dataclass(frozen=True)
class GroupRows:
    """One group's embedding matrix and the content hash of each of its rows."""

    vectors: np.ndarray
    contents: Sequence[str]


def split_scores(groups: Mapping[str, GroupRows], vectors: str, cache: ContentCache,
                 seed: int) -> dict[str, ImageScores]:
    """image_scores of every group (by name), each against the other groups of its split
    (vectors: the model's key), or their stored copies for the same rows and settings."""
    splits: dict[str | None, list[str]] = {}
    for name in groups:
        splits.setdefault(split_of(name), []).append(name)
    out: dict[str, ImageScores] = {}
    for names in splits.values():
        out |= _split_scores({name: groups[name] for name in names}, vectors, cache, seed)
    return {name: out[name] for name in groups}


def _split_scores(groups: Mapping[str, GroupRows], vectors: str, cache: ContentCache,
                  seed: int) -> dict[str, ImageScores]:
    digests = {name: content_key("", g.contents) for name, g in groups.items()}
    keys = {name: scores_key(vectors, g.contents, seed,
                             [d for other, d in digests.items() if other != name])
            for name, g in groups.items()}
    out = {name: stored for name in groups
           if (stored := cache.recall(keys[name], _decoder(len(groups[name].vectors)),
                                      "image scores", "computing them again")) is not None}
    missing = [name for name in groups if name not in out]
    if not missing:
        return out
    U = unit_rows(np.concatenate([g.vectors for g in groups.values()]))  # the split's rows
    starts = dict(zip(groups, np.cumsum([0, *(len(g.vectors) for g in groups.values())]).tolist(),
                      strict=False))
    spans = {name: (starts[name], starts[name] + len(groups[name].vectors)) for name in missing}
    searched = [name for name in missing if 0 < len(groups[name].vectors) < len(U)]
    elsewhere = dict(zip(searched, _elsewhere(U, [spans[n] for n in searched]), strict=True)
                     ) if searched else {}
    for name in missing:
        start, stop = spans[name]
        out[name] = _scores(U[start:stop], elsewhere.get(name), seed)
        cache.put_blob(keys[name], _to_bytes(out[name]))
    return out


def _to_bytes(scores: ImageScores) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, typicality=scores.typicality, outlier=scores.outlier,
             uniqueness=scores.uniqueness)
    return buffer.getvalue()


def _decoder(rows: int) -> Callable[[bytes], ImageScores | None]:
    """Reads a group's stored scores; None when they are not one score a row (damaged)."""

    def decode(data: bytes) -> ImageScores | None:
        with np.load(io.BytesIO(data)) as z:
            scores = ImageScores(z["typicality"], z["outlier"], z["uniqueness"])
        arrays = (scores.typicality, scores.outlier, scores.uniqueness)
        return scores if all(len(a) == rows for a in arrays) else None

    return decode
