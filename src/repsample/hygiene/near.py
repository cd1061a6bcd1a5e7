"""Near-duplicate candidates: each content's nearest neighbours whose cosine reaches a threshold.

A near-duplicate of an image is among its very nearest neighbours, so the search asks faiss for
each row's NEIGHBOURS nearest rows instead of every pair above the threshold: on a dataset of
look-alikes (one product shot 20,000 times) the pairs above a threshold grow as n^2, the nearest
neighbours as n. Up to EXACT_UP_TO rows the search is exact (faiss's flat index: blocked matrix
products); above, an inverted-file index over a PCA projection visits a few cells per row and
the candidates it proposes are rescored on the full vectors, so every
similarity reported is exact. bench/duplicates.py measures the candidate recall against exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repsample.progress import Progress, SilentProgress

NEIGHBOURS = 16
"""Nearest neighbours searched per content. An image with more distinct near-duplicates than
this is still linked to its 16 closest, and through them to the rest of its set."""
EXACT_UP_TO = 50_000
"""Rows up to which the search is exact; above, approximate (IVF over PCA, then exact rescoring)."""
PCA_DIMS = 256
CELLS_PER_SQRT_N = 4  # IVF cells: 4 sqrt(n), faiss's usual choice
PROBES = 32  # cells visited per query
TRAIN_PER_CELL = 40  # training rows per cell, as faiss asks for (at least 39)
REFINE = 3  # the approximate search proposes REFINE x NEIGHBOURS candidates to rescore
_CHUNK = 1024  # queries per search call: progress, and bounded memory for the rescoring


@dataclass(frozen=True)
class Pairs:
    """Pairs (first[k], second[k]) of row numbers, first < second, with their similarity."""

    first: np.ndarray  # int64
    second: np.ndarray  # int64
    similarity: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.first)

    def subset(self, mask: np.ndarray) -> Pairs:
        return Pairs(self.first[mask], self.second[mask], self.similarity[mask])

    @staticmethod
    def empty() -> Pairs:
        return Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32); an all-zero row stays zero and matches nothing."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out: np.ndarray = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return out


def candidate_pairs(
    X: np.ndarray,
    threshold: float,
    neighbours: int = NEIGHBOURS,
    progress: Progress | None = None,
    exact_up_to: int = EXACT_UP_TO,
) -> Pairs:
    """Each row's ``neighbours`` nearest other rows with cosine similarity >= threshold, as
    pairs (each once, first < second)."""
    n = len(X)
    if n < 2:
        return Pairs.empty()
    U = np.ascontiguousarray(unit_rows(X))
    k = min(neighbours, n - 1) + 1  # + 1: a row finds itself
    nearest = _Exact(U) if n <= exact_up_to else _Approximate(U)
    bar = (progress or SilentProgress()).stage("check", math.ceil(n / _CHUNK))
    firsts, seconds, sims = [], [], []
    for start in range(0, n, _CHUNK):
        similarity, found = nearest(U[start : start + _CHUNK], k)
        rows = np.arange(start, start + len(found))[:, None]
        keep = (found >= 0) & (found != rows) & (similarity >= threshold)
        a, b = np.broadcast_to(rows, found.shape)[keep], found[keep]
        firsts.append(np.minimum(a, b))
        seconds.append(np.maximum(a, b))
        sims.append(similarity[keep])
        bar.advance()
    bar.close()
    first, second = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    similarity = np.minimum(np.concatenate(sims).astype(np.float32), 1.0)
    _, once = np.unique(first * n + second, return_index=True)  # a pair found from both ends
    return Pairs(first[once], second[once], similarity[once])


def nearest_rows(U: np.ndarray, k: int, exact_up_to: int = EXACT_UP_TO) -> tuple[np.ndarray, np.ndarray]:
    """Each unit-length row's k nearest other rows (k < len(U)): their cosine similarities, the
    most similar first, and their row numbers (-1 where the approximate search found too few)."""
    U = np.ascontiguousarray(U, dtype=np.float32)
    nearest = _Exact(U) if len(U) <= exact_up_to else _Approximate(U)
    similarities, rows = [], []
    for start in range(0, len(U), _CHUNK):
        similarity, found = nearest(U[start : start + _CHUNK], k + 1)  # + 1: a row finds itself
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
        found = [nearest(U[at : min(at + _CHUNK, stop)], k, (start, stop))
                 for at in range(start, stop, _CHUNK)]
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


def confirmed(pairs: Pairs, keep: Callable[[np.ndarray, np.ndarray], np.ndarray],
              chunk: int = 1 << 16) -> Pairs:
    """The pairs that ``keep(first, second) -> mask`` confirms, asked a chunk at a time."""
    mask = np.zeros(len(pairs), bool)
    for start in range(0, len(pairs), chunk):
        part = slice(start, start + chunk)
        mask[part] = keep(pairs.first[part], pairs.second[part])
    return pairs.subset(mask)


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
