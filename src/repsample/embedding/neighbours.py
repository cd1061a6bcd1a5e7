"""Nearest neighbours of embeddings: the one search (faiss) that selection, hygiene and evaluate share.

Two spaces, one search:

- Unit-length rows by cosine similarity (hygiene: near-duplicates, image scores): ``search_unit_rows``,
  ``nearest_rows``, ``nearest_outside``. Up to EXACT_UP_TO rows the search is exact (faiss's flat
  index: blocked matrix products); above, an inverted-file index over a PCA projection visits a
  few cells per row and the candidates it proposes are rescored on the full vectors, so every
  similarity reported is exact.
- Rows as they are, by Euclidean distance (selection's rules, evaluate's coverage): ``knn`` and
  ``nearest_of``, always exact. faiss proposes a few more candidates than asked for, in float32
  on centred and scaled copies (so that neither long nor tiny vectors overflow or vanish there);
  each candidate's distance is then measured again in float64 as the norm of the difference, and
  the nearest are taken by that, ties to the lower row: the same neighbours and distances as an
  exact float64 search.

``typicality`` is the one definition of how typical a row is among the rows it was searched with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

EXACT_UP_TO = 50_000
"""Rows up to which the cosine search is exact; above, approximate (IVF over PCA, then exact
rescoring)."""
PCA_DIMS = 256
CELLS_PER_SQRT_N = 4  # IVF cells: 4 sqrt(n), faiss's usual choice
PROBES = 32  # cells visited per query
TRAIN_PER_CELL = 40  # training rows per cell, as faiss asks for (at least 39)
REFINE = 3  # the approximate search proposes REFINE x k candidates to rescore
SEARCH_KEY = f"{EXACT_UP_TO}|{PCA_DIMS}|{CELLS_PER_SQRT_N}|{PROBES}|{REFINE}"
"""The settings that decide which neighbours the cosine search finds, for the cache keys of
results built on it."""
CHUNK = 1024  # queries per search call: progress, and bounded memory for the rescoring
SPARE = 8
"""Extra candidates the Euclidean search proposes beyond k: float32 rounding may swap the k-th
nearest with a row just behind it, never with one 8 places behind."""
_RESCORED = 1 << 22  # float64 elements of differences measured at a time (32 MB)
_TINY = 1e-12


def typicality(distances: np.ndarray) -> np.ndarray:
    """TypiClust's typicality: 1 / the mean of each row's distances to its nearest other rows
    (a row of ``distances``); higher = denser, more typical. NaN for a row with no neighbour."""
    if distances.shape[1] == 0:
        return np.full(len(distances), np.nan)
    return np.asarray(1.0 / (distances.mean(axis=1) + _TINY))


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); an all-zero row stays zero and matches nothing."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out: np.ndarray = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return out


# -- rows as they are, by Euclidean distance ---------------------------------------------------


def knn(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float64, ascending) and row numbers of each row's k nearest other rows (k capped
    at n - 1), the row itself excluded even where an exact copy ties with it."""
    n = len(X)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0)), np.zeros((n, 0), dtype=np.int64)
    return _euclidean(X, X, k, own=True)


def nearest_of(queries: np.ndarray, base: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float64, ascending) and row numbers of each query's k nearest rows of ``base``
    (k capped at its size); a query that is a row of base finds it at distance exactly 0."""
    k = min(k, len(base))
    if k < 1 or not len(queries):
        return np.zeros((len(queries), 0)), np.zeros((len(queries), 0), dtype=np.int64)
    return _euclidean(queries, base, k, own=False)


def _euclidean(queries: np.ndarray, base: np.ndarray, k: int,
               own: bool) -> tuple[np.ndarray, np.ndarray]:
    """own: the queries are base itself, and a row is not its own neighbour."""
    import faiss

    centre = base.mean(axis=0, dtype=np.float64)
    spread = float(max(np.abs(base.max(axis=0) - centre).max(), np.abs(base.min(axis=0) - centre).max()))
    scaled_base = _scaled(base, centre, spread)
    scaled_queries = scaled_base if own else _scaled(queries, centre, spread)
    proposed = min(k + SPARE + int(own), len(base))
    step = max(1, _RESCORED // (proposed * base.shape[1]))
    distances, rows = [], []
    for start in range(0, len(queries), step):
        part = slice(start, start + step)
        _, found = faiss.knn(scaled_queries[part], scaled_base, proposed, metric=faiss.METRIC_L2)
        found = found.astype(np.int64)
        measured = _distances(queries[part], base[found])
        if own:
            measured[found == np.arange(start, start + len(found))[:, None]] = np.inf
        best = np.lexsort((found, measured), axis=1)[:, :k]  # by distance, ties to the lower row
        distances.append(np.take_along_axis(measured, best, 1))
        rows.append(np.take_along_axis(found, best, 1))
    return np.concatenate(distances), np.concatenate(rows)


def _distances(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each query's float64 distance to each of its candidates (queries x k x dim), computed in
    place on one float64 copy: the bits np.linalg.norm(q - c) gives, at a third of the memory."""
    diff = candidates.astype(np.float64)
    diff -= np.asarray(queries, dtype=np.float64)[:, None, :]  # (c - q)^2 == (q - c)^2 exactly
    np.multiply(diff, diff, out=diff)
    distances: np.ndarray = np.sqrt(np.add.reduce(diff, axis=2))
    return distances


def _scaled(X: np.ndarray, centre: np.ndarray, spread: float) -> np.ndarray:
    """float32 (X - centre) / spread, contiguous for faiss: distances keep their order. Computed
    in float64 a block of rows at a time (no float64 copy of X)."""
    scaled = np.empty(X.shape, dtype=np.float32)
    step = max(1, _RESCORED // max(1, X.shape[1]))
    for start in range(0, len(X), step):
        part = slice(start, start + step)
        scaled[part] = (np.asarray(X[part], dtype=np.float64) - centre) / (spread if spread > 0 else 1.0)
    return scaled


# -- unit-length rows, by cosine similarity ----------------------------------------------------


def search_unit_rows(U: np.ndarray, k: int, exact_up_to: int = EXACT_UP_TO
                     ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each unit-length row's k most similar rows of U (usually itself first), CHUNK queries at a
    time: (the chunk's first row, cosine similarities, most similar first, and row numbers, -1
    where the approximate search found too few)."""
    U = np.ascontiguousarray(U, dtype=np.float32)
    nearest = _Exact(U) if len(U) <= exact_up_to else _Approximate(U)
    for start in range(0, len(U), CHUNK):
        similarity, found = nearest(U[start : start + CHUNK], k)
        yield start, similarity, found


def nearest_rows(U: np.ndarray, k: int, exact_up_to: int = EXACT_UP_TO) -> tuple[np.ndarray, np.ndarray]:
    """Each unit-length row's k nearest other rows (k < len(U)): their cosine similarities, the
    most similar first, and their row numbers (-1 where the approximate search found too few)."""
    similarities, rows = [], []
    for start, similarity, found in search_unit_rows(U, k + 1, exact_up_to):  # + 1: itself
        own = found == np.arange(start, start + len(found))[:, None]
        # Drop the row itself; where an exact copy hid it, the last one found goes instead.
        keep = np.argsort(own, axis=1, kind="stable")[:, :k]
        similarities.append(np.take_along_axis(similarity, keep, 1))
        rows.append(np.take_along_axis(found, keep, 1))
    return np.concatenate(similarities), np.concatenate(rows).astype(np.int64)


def nearest_outside(U: np.ndarray, spans: Sequence[tuple[int, int]], k: int,
                    exact_up_to: int = EXACT_UP_TO) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each span (start, stop) of unit-length rows, each of its rows' k nearest rows of U
    outside the span (k <= len(U) - the span's length): their cosine similarities, the most
    similar first, and row numbers (-1 where the approximate search found too few). One index
    over U serves every span (a group against the rest of its split)."""
    U = np.ascontiguousarray(U, dtype=np.float32)
    nearest = _exact_outside(U) if len(U) <= exact_up_to else _Approximate(U)
    out = []
    for start, stop in spans:
        found = [nearest(U[at : min(at + CHUNK, stop)], k, (start, stop))
                 for at in range(start, stop, CHUNK)]
        out.append((np.concatenate([s for s, _ in found]),
                    np.concatenate([r for _, r in found]).astype(np.int64)))
    return out


def _exact_outside(U: np.ndarray) -> Callable[[np.ndarray, int, tuple[int, int]],
                                               tuple[np.ndarray, np.ndarray]]:
    """Exact search of U's rows before and after a span, each part in place by blocked matrix
    products (faiss.knn), the two merged: faiss's selectors would search row by row, 4x slower."""
    import faiss

    def search(queries: np.ndarray, k: int, skip: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        similarities, rows = [], []
        for start, stop in ((0, skip[0]), (skip[1], len(U))):
            if stop > start:
                similarity, found = faiss.knn(queries, U[start:stop], min(k, stop - start),
                                              metric=faiss.METRIC_INNER_PRODUCT)
                similarities.append(similarity)
                rows.append(found + start)
        similarity, found = np.concatenate(similarities, 1), np.concatenate(rows, 1)
        best = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(similarity, best, 1), np.take_along_axis(found, best, 1)

    return search


def _outside(start: int, stop: int) -> Any:
    """faiss's selector of the rows not in [start, stop)."""
    import faiss

    return faiss.IDSelectorNot(faiss.IDSelectorRange(start, stop))


class _Exact:
    """faiss's flat index: every row compared, by blocked matrix products."""

    def __init__(self, U: np.ndarray) -> None:
        import faiss

        self.index = faiss.IndexFlatIP(U.shape[1])
        self.index.add(U)

    def __call__(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        similarity, found = self.index.search(queries, k)
        return similarity, found


class _Approximate:
    """An IVF index over a PCA projection proposes REFINE x k rows; their exact cosines pick k.

    Rows are unit length, so the nearest by cosine are the nearest by Euclidean distance, which
    the (centred) projection keeps approximately. The rescoring reads the caller's rows rather
    than a second copy inside faiss: at 1,000,000 x 1280 that copy would be 5 GB.
    """

    def __init__(self, U: np.ndarray) -> None:
        import faiss

        n, dim = U.shape
        cells = max(1, min(int(CELLS_PER_SQRT_N * math.sqrt(n)), n // TRAIN_PER_CELL))
        reduced = min(PCA_DIMS, dim)
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(reduced), reduced, cells, faiss.METRIC_L2)
        ivf.nprobe = self.nprobe = min(PROBES, cells)
        self.index = faiss.IndexPreTransform(faiss.PCAMatrix(dim, reduced), ivf)
        sample = np.random.default_rng(0).choice(n, min(n, TRAIN_PER_CELL * cells), replace=False)
        self.index.train(U[np.sort(sample)])
        self.index.add(U)
        self.U = U

    def __call__(self, queries: np.ndarray, k: int,
                 skip: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """skip: a span of rows left out (faiss's selector)."""
        if skip is None:
            _, proposed = self.index.search(queries, REFINE * k)
        else:
            import faiss

            ivf = faiss.SearchParametersIVF()
            ivf.sel, ivf.nprobe = _outside(*skip), self.nprobe
            params = faiss.SearchParametersPreTransform()
            params.index_params = ivf
            _, proposed = self.index.search(queries, REFINE * k, params=params)
        similarity = np.einsum("qd,qkd->qk", queries, self.U[np.maximum(proposed, 0)])
        similarity[proposed < 0] = -np.inf
        best = np.argsort(-similarity, axis=1)[:, :k]
        return np.take_along_axis(similarity, best, 1), np.take_along_axis(proposed, best, 1)
