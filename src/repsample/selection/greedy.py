"""Scores and greedy rules that the selection strategies are built from, on plain matrices."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from repsample.embedding import neighbours
from repsample.embedding.neighbours import knn


def typicality(X: np.ndarray, k: int = 20) -> np.ndarray:
    """TypiClust's typicality (embedding.neighbours.typicality) of each row among X's rows, from
    its k nearest other rows by Euclidean distance; higher = denser (NaN for a lone row)."""
    return neighbours.typicality(knn(X, k)[0])


def farthest_first(
    candidates: np.ndarray, kept: np.ndarray, quota: int, start: int | None = None,
    clusters: np.ndarray | None = None, room: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy k-center: repeatedly the candidate farthest from everything chosen or kept.

    With nothing kept the first pick is ``start`` (default: row 0). With ``clusters`` (each
    candidate's cluster) and ``room`` (picks each cluster may still take), a full cluster's
    candidates are passed over, so the picks keep to an allocation. Returns positions in
    ``candidates``, in pick order (fewer than ``quota`` when every cluster is full).
    """
    m = len(candidates)
    nearest = np.full(m, np.inf)
    for row in kept:
        nearest = np.minimum(nearest, np.linalg.norm(candidates - row, axis=1))
    left = None if room is None or clusters is None else np.array(room, dtype=np.int64)
    order: list[int] = []
    for _ in range(min(quota, m)):
        score = nearest if left is None else np.where(left[clusters] > 0, nearest, -np.inf)
        first = start is not None and not (len(order) or len(kept)) and score[start] > -np.inf
        j = int(start) if first and start is not None else int(np.argmax(score))
        if score[j] == -np.inf:
            break
        order.append(j)
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[j], axis=1))
        nearest[j] = -np.inf  # never again, even among exact duplicates
        if left is not None and clusters is not None:
            left[clusters[j]] -= 1
    return np.asarray(order, dtype=np.int64)


def knn_similarity(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse similarity as (row, col, value) triples: each row to itself and its k neighbours.

    Gaussian of the distance, bandwidth the median neighbour distance: O(n k) memory.
    """
    n = len(X)
    dist, ind = knn(X, k)
    positive = dist[dist > 0]
    sigma = float(np.median(positive)) if len(positive) else 1.0
    cols = np.concatenate([np.arange(n)[:, None], ind], axis=1)
    sims = np.concatenate([np.ones((n, 1)), np.exp(-((dist / sigma) ** 2) / 2)], axis=1)
    rows = np.repeat(np.arange(n), cols.shape[1])
    return rows, cols.ravel(), sims.ravel()


def facility_greedy(X: np.ndarray, quota: int, start: np.ndarray, k: int = 20) -> np.ndarray:
    """Greedy facility location: maximise sum_i max_{j in S} sim(i, j) over a kNN similarity.

    Rows at positions ``start`` are already in S (kept); picks come from the other rows, in
    order. Each step costs O(n k), the graph O(n k) memory.
    """
    n = len(X)
    rows, cols, sims = knn_similarity(X, k)
    by_col = np.argsort(cols, kind="stable")
    bounds = np.searchsorted(cols[by_col], np.arange(n + 1))
    cover = np.zeros(n)
    taken = np.zeros(n, dtype=bool)

    def add(j: int) -> None:
        entries = by_col[bounds[j] : bounds[j + 1]]
        np.maximum.at(cover, rows[entries], sims[entries])
        taken[j] = True

    for j in start:
        add(int(j))
    order: list[int] = []
    for _ in range(min(quota, n - len(start))):
        gains = np.bincount(cols, weights=np.maximum(sims - cover[rows], 0.0), minlength=n)
        gains[taken] = -np.inf
        j = int(np.argmax(gains))
        order.append(j)
        add(j)
    return np.asarray(order, dtype=np.int64)


def kernel_herding(
    X: np.ndarray, quota: int, start: np.ndarray, rng: np.random.RandomState,
    sample: int = 2000,
) -> np.ndarray:
    """Kernel herding: greedy picks whose kernel mean tracks the rows' (greedy MMD descent).

    Each pick maximises mean_j k(x, X_j) - sum_{s in S} k(x, s) / (|S| + 1), RBF kernel with the
    median pairwise distance as bandwidth. The mean over X uses a seeded sample of ``sample``
    rows above that size: O(n * sample) time, O(n) memory. Rows at ``start`` are already in S.
    """
    kernel = _HerdingKernel(np.asarray(X, dtype=np.float32), rng, sample)
    target = kernel.target()
    n = len(kernel.X)
    pull = np.zeros(n)
    taken = np.zeros(n, dtype=bool)
    order: list[int] = []
    with threadpool_limits(limits=1, user_api="blas"):  # one small product per pick: no sharing
        for j in start:
            pull += kernel.column(int(j))
            taken[j] = True
        chosen = int(taken.sum())
        for _ in range(min(quota, n - len(start))):
            score = target - pull / (chosen + 1)
            score[taken] = -np.inf
            j = int(np.argmax(score))
            order.append(j)
            pull += kernel.column(j)
            taken[j] = True
            chosen += 1
    return np.asarray(order, dtype=np.int64)


class _HerdingKernel:
    """Kernel herding's RBF kernel, in float32: each row's mean kernel value over the reference
    rows (all of them up to ``sample`` rows, a seeded sample above) and any row's column. Up to
    ``sample`` rows the kernel matrix behind the mean also gives every column; above, a column is
    one matrix-vector product with the cached squared norms."""

    def __init__(self, X: np.ndarray, rng: np.random.RandomState, sample: int) -> None:
        n = len(X)
        self.whole = n <= sample
        ref = X if self.whole else X[np.sort(rng.choice(n, sample, replace=False))]
        centre = ref.mean(axis=0)
        # Centred: distances unchanged, norms small, so less is lost in X.X - 2X.Y.
        self.X, self.ref = X - centre, ref - centre
        self.squares = np.einsum("ij,ij->i", self.X, self.X)
        self.ref_squares = self.squares if self.whole else np.einsum("ij,ij->i", self.ref, self.ref)
        between = self.squared(self.ref, self.ref_squares)
        np.fill_diagonal(between, 0)
        median = median_distance(between)
        scale = median if median > 0 else 1.0
        self.gamma = np.float32(-1 / (2 * scale**2))
        self.gram = self.kernel(between) if self.whole else None  # n x n: the mean's and every column

    def squared(self, rows: np.ndarray, rows_squares: np.ndarray) -> np.ndarray:
        """Squared distances from ``rows`` to every reference row, float32, >= 0."""
        d2: np.ndarray = rows @ self.ref.T
        d2 *= -2
        d2 += rows_squares[:, None]
        d2 += self.ref_squares[None, :]
        np.maximum(d2, 0, out=d2)
        return d2

    def kernel(self, d2: np.ndarray) -> np.ndarray:
        """exp(-d2 / (2 scale^2)), in place."""
        d2 *= self.gamma
        np.exp(d2, out=d2)
        return d2

    def target(self) -> np.ndarray:
        """Each row's mean kernel value over the reference rows (float64)."""
        if self.gram is not None:
            return np.asarray(self.gram.mean(axis=1, dtype=np.float64))
        return np.concatenate([self.kernel(self.squared(self.X[i : i + 4096], self.squares[i : i + 4096]))
                               .mean(axis=1, dtype=np.float64) for i in range(0, len(self.X), 4096)])

    def column(self, j: int) -> np.ndarray:
        """Every row's kernel value with row j."""
        if self.gram is not None:
            return np.asarray(self.gram[:, j])
        d2 = self.X @ self.X[j]
        d2 *= -2
        d2 += self.squares
        d2 += self.squares[j]
        return self.kernel(np.maximum(d2, 0, out=d2))


def median_distance(squared: np.ndarray) -> float:
    """``np.median`` of the distances above the diagonal of a squared-distance matrix (0 if none):
    the middle values are found among the squares (same order) and only they are rooted."""
    m = len(squared)
    upper = np.concatenate([squared[i, i + 1 :] for i in range(m - 1)]) if m > 1 else squared[:0, 0]
    if not len(upper):
        return 0.0
    half = len(upper) // 2
    if len(upper) % 2:
        return float(np.sqrt(np.partition(upper, half)[half]))
    low, high = np.partition(upper, [half - 1, half])[[half - 1, half]]
    return float((np.sqrt(low) + np.sqrt(high)) / 2)
