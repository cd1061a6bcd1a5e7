"""Select: scikit-learn style selectors that pick a budget of rows from an embedding matrix.

A selector clusters the rows (best-silhouette KMeans), splits the budget across clusters
(an allocation scheme), then picks inside each cluster (the strategy's own rule). Usable on any
matrix: ``CentroidSelector(n_select=100).fit(X).selected_indices_``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from repsample.allocate import ALLOCATIONS, allocate
from repsample.cluster import choose_k
from repsample.registry import Registry


class ClusterSelector:
    """Base class: cluster, allocate, then ``_pick`` inside each cluster.

    Parameters
    ----------
    n_select: how many rows to keep; a matrix with no more rows than that is kept whole,
        without clustering.
    allocation: how the budget is split across clusters (see ``repsample.list_allocations``).
    k_min, k_max: the range of cluster counts tried.
    silhouette_sample: above this many rows, the silhouette uses a seeded sample of this size.
    random_state: seed (int) for KMeans, the silhouette sample and any random choice.

    Attributes after ``fit``: ``selected_indices_`` (sorted), ``labels_`` (-1 where no
    clustering ran), ``k_``, ``cluster_centers_``, ``distances_`` (each row to its centre),
    ``silhouette_scores_`` ({k: score}), ``silhouette_sample_`` and ``quotas_`` (per cluster).
    """

    def __init__(
        self,
        n_select: int = 1000,
        *,
        allocation: str = "equal",
        k_min: int = 5,
        k_max: int = 20,
        silhouette_sample: int = 3000,
        random_state: int | None = 42,
    ) -> None:
        self.n_select = n_select
        self.allocation = allocation
        self.k_min = k_min
        self.k_max = k_max
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _validate(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D matrix (rows = images), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values")
        if int(self.n_select) < 1:
            raise ValueError(f"n_select must be >= 1, got {self.n_select}")
        if not 1 <= self.k_min <= self.k_max:
            raise ValueError(f"need 1 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")
        if self.silhouette_sample < 2:
            raise ValueError(f"silhouette_sample must be >= 2, got {self.silhouette_sample}")
        ALLOCATIONS.get(self.allocation)
        return X

    def fit(self, X: np.ndarray) -> ClusterSelector:
        X = self._validate(X)
        n = len(X)
        seed = self.random_state
        rng = check_random_state(seed)
        if n <= self.n_select:
            self.k_ = 0
            self.labels_ = np.full(n, -1, dtype=np.int64)
            self.cluster_centers_ = np.empty((0, X.shape[1]))
            self.distances_ = np.full(n, np.nan)
            self.silhouette_scores_: dict[int, float] = {}
            self.silhouette_sample_: int | None = None
            self.quotas_ = np.empty(0, dtype=np.int64)
            self.selected_indices_ = np.arange(n)
            return self
        clustering = choose_k(X, self.k_min, self.k_max, seed, self.silhouette_sample)  # type: ignore[arg-type]
        self.k_ = clustering.k
        self.labels_ = clustering.labels
        self.cluster_centers_ = clustering.centers
        self.silhouette_scores_ = clustering.silhouettes
        self.silhouette_sample_ = clustering.silhouette_sample
        self.distances_ = np.linalg.norm(X - self.cluster_centers_[self.labels_], axis=1)
        sizes = np.bincount(self.labels_, minlength=self.k_)
        self.quotas_ = allocate(sizes, self.n_select, self.allocation)
        chosen = []
        for c in range(self.k_):
            members = np.flatnonzero(self.labels_ == c)
            if self.quotas_[c]:
                picked = self._pick(X, members, c, int(self.quotas_[c]), rng)
                chosen.append(members[picked[: self.quotas_[c]]])
        self.selected_indices_ = np.sort(np.concatenate(chosen))
        return self

    def _pick(
        self, X: np.ndarray, members: np.ndarray, cluster: int, quota: int,
        rng: np.random.RandomState,
    ) -> np.ndarray:
        """Positions in ``members`` of the rows to keep, best first (at least ``quota``)."""
        raise NotImplementedError


class CentroidSelector(ClusterSelector):
    """Nearest to each cluster centre (the original method)."""

    def _pick(
        self, X: np.ndarray, members: np.ndarray, cluster: int, quota: int,
        rng: np.random.RandomState,
    ) -> np.ndarray:
        return np.argsort(self.distances_[members], kind="stable")[:quota]


STRATEGIES: Registry[type[ClusterSelector]] = Registry("strategy")
STRATEGIES.register("centroid", CentroidSelector)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def strategy_summary(name: str) -> str:
    doc = STRATEGIES.get(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
