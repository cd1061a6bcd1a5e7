"""Scores and greedy rules that the selection strategies are built from, on plain matrices."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]


def knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of each row's k nearest other rows (k capped at n - 1), self excluded."""
    k = min(k, len(X) - 1)
    if k < 1:
        return np.zeros((len(X), 0)), np.zeros((len(X), 0), dtype=np.int64)
    dist, ind = NearestNeighbors(n_neighbors=k).fit(X).kneighbors()
    return dist, ind


def typicality(X: np.ndarray, k: int = 20) -> np.ndarray:
    """TypiClust's typicality: 1 / mean distance to the k nearest neighbours; higher = denser."""
    dist, _ = knn(X, k)
    mean = dist.mean(axis=1) if dist.shape[1] else np.zeros(len(X))
    return np.asarray(1.0 / (mean + 1e-12))


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
    In float32; up to ``sample`` rows the kernel matrix behind the mean also gives every pick's
    column, above it a pick's column is one matrix-vector product with the cached squared norms.
    """
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    whole = n <= sample
    ref = X if whole else X[np.sort(rng.choice(n, sample, replace=False))]
    centre = ref.mean(axis=0)
    X, ref = X - centre, ref - centre  # distances unchanged, norms small: less lost in X.X - 2X.Y
    squares = np.einsum("ij,ij->i", X, X)
    ref_squares = squares if whole else np.einsum("ij,ij->i", ref, ref)

    def squared(rows: np.ndarray, rows_squares: np.ndarray) -> np.ndarray:
        """Squared distances from ``rows`` to every row of ref, float32, >= 0."""
        d2: np.ndarray = rows @ ref.T
        d2 *= -2
        d2 += rows_squares[:, None]
        d2 += ref_squares[None, :]
        np.maximum(d2, 0, out=d2)
        return d2

    between = squared(ref, ref_squares)
    np.fill_diagonal(between, 0)
    median = median_distance(between)
    scale = median if median > 0 else 1.0
    gamma = np.float32(-1 / (2 * scale**2))

    def kernel(d2: np.ndarray) -> np.ndarray:
        d2 *= gamma
        np.exp(d2, out=d2)
        return d2

    if whole:
        gram = kernel(between)  # n x n: the mean's matrix and every pick's column
        target = gram.mean(axis=1, dtype=np.float64)
    else:
        target = np.concatenate([kernel(squared(X[i : i + 4096], squares[i : i + 4096]))
                                 .mean(axis=1, dtype=np.float64) for i in range(0, n, 4096)])

    def column(j: int) -> np.ndarray:
        if whole:
            return gram[:, j]
        d2 = X @ X[j]
        d2 *= -2
        d2 += squares
        d2 += squares[j]
        return kernel(np.maximum(d2, 0, out=d2))

    pull = np.zeros(n)
    taken = np.zeros(n, dtype=bool)
    order: list[int] = []
    with threadpool_limits(limits=1, user_api="blas"):  # one small product per pick: no sharing
        for j in start:
            pull += column(int(j))
            taken[j] = True
        chosen = int(taken.sum())
        for _ in range(min(quota, n - len(start))):
            score = target - pull / (chosen + 1)
            score[taken] = -np.inf
            j = int(np.argmax(score))
            order.append(j)
            pull += column(j)
            taken[j] = True
            chosen += 1
    return np.asarray(order, dtype=np.int64)


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
