"""Select: scikit-learn style selectors that pick a budget of rows from an embedding matrix.

A selector clusters the rows (best-silhouette KMeans), splits the budget across clusters
(an allocation scheme), then picks inside each cluster (the strategy's own rule). Usable on any
matrix: ``CentroidSelector(n_select=100).fit(X).selected_indices_``.

``fit(X, keep=rows)`` keeps earlier picks and adds to them up to ``n_select`` (a grown dataset);
``fit(X, clustering=c)`` reuses a clustering of X (computing one is the costly part).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.utils import check_random_state

from repsample.allocate import ALLOCATIONS, allocate
from repsample.cluster import Clustering, choose_k
from repsample.registry import Registry
from repsample.scores import facility_greedy, farthest_first, kernel_herding, typicality

Rng = np.random.RandomState


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

    Attributes after ``fit``: ``selected_indices_`` (sorted), ``kept_indices_`` (rows kept from
    ``keep``), ``labels_`` (-1 where no clustering ran), ``k_``, ``cluster_centers_``,
    ``distances_`` (each row to its centre), ``silhouette_scores_`` ({k: score}),
    ``silhouette_sample_``, ``quotas_`` (per cluster, kept rows included) and ``pick_order_``
    (per row, its order of selection within its cluster, 1 = first; 0 = not selected).
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

    def _validate(self, X: np.ndarray, keep: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
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
        kept = np.unique(np.asarray(keep if keep is not None else [], dtype=np.int64))
        if len(kept) and (kept[0] < 0 or kept[-1] >= len(X)):
            raise ValueError(f"keep holds row numbers outside 0..{len(X) - 1}")
        return X, kept

    def fit(
        self, X: np.ndarray, keep: Sequence[int] | None = None, *,
        clustering: Clustering | None = None,
    ) -> ClusterSelector:
        X, kept = self._validate(X, keep)
        n = len(X)
        self.kept_indices_ = kept
        if n <= self.n_select:
            self._no_clustering(X)
            self.selected_indices_ = np.arange(n)
            return self
        if clustering is None:
            clustering = choose_k(X, self.k_min, self.k_max, self.random_state,  # type: ignore[arg-type]
                                  self.silhouette_sample)
        elif len(clustering.labels) != n:
            raise ValueError(f"clustering has {len(clustering.labels)} labels for {n} rows")
        self.k_ = clustering.k
        self.labels_ = clustering.labels
        self.cluster_centers_ = clustering.centers
        self.silhouette_scores_: dict[int, float] = clustering.silhouettes
        self.silhouette_sample_: int | None = clustering.silhouette_sample
        self.distances_ = np.linalg.norm(X - self.cluster_centers_[self.labels_], axis=1)
        new = self._select(X, kept, max(0, int(self.n_select) - len(kept)),
                           check_random_state(self.random_state))
        self.selected_indices_ = np.union1d(kept, new)
        self.quotas_ = np.bincount(self.labels_[self.selected_indices_], minlength=self.k_)
        self.pick_order_ = self._pick_order(kept, new)
        return self

    def _pick_order(self, kept: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Per row, 1-based order of selection within its cluster (kept rows first); 0 if not selected.

        ``new`` lists each cluster's picks best first, so this is the strategy's own order.
        """
        order = np.zeros(len(self.labels_), dtype=np.int64)
        taken = np.zeros(max(self.k_, 1), dtype=np.int64)
        for row in np.concatenate([kept, new]):
            taken[self.labels_[row]] += 1
            order[row] = taken[self.labels_[row]]
        return order

    def _no_clustering(self, X: np.ndarray) -> None:
        n = len(X)
        self.k_ = 0
        self.labels_ = np.full(n, -1, dtype=np.int64)
        self.cluster_centers_ = np.empty((0, X.shape[1]))
        self.distances_ = np.full(n, np.nan)
        self.silhouette_scores_ = {}
        self.silhouette_sample_ = None
        self.quotas_ = np.empty(0, dtype=np.int64)
        self.pick_order_ = np.zeros(n, dtype=np.int64)  # kept whole: no order to tell

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        """Rows to add to ``kept``: split ``budget`` across clusters, then pick in each."""
        sizes = np.bincount(self.labels_, minlength=self.k_)
        kept_per = np.bincount(self.labels_[kept], minlength=self.k_)
        quotas = top_up(sizes, kept_per, len(kept) + budget, self.allocation)
        chosen = [np.empty(0, dtype=np.int64)]
        is_kept = np.zeros(len(X), dtype=bool)
        is_kept[kept] = True
        for c in np.flatnonzero(quotas):
            in_c = self.labels_ == c
            candidates = np.flatnonzero(in_c & ~is_kept)
            picked = self._pick(X, candidates, np.flatnonzero(in_c & is_kept), int(c),
                                int(quotas[c]), rng)
            chosen.append(candidates[picked[: quotas[c]]])
        return np.concatenate(chosen)

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        """Positions in ``candidates`` (rows of one cluster not kept) to take, best first.

        ``kept`` are the cluster's rows kept from an earlier selection; ``quota`` <= candidates.
        """
        raise NotImplementedError


def top_up(sizes: np.ndarray, kept: np.ndarray, total: int, scheme: str) -> np.ndarray:
    """New picks per cluster so that kept + new = min(total, sizes.sum()), exactly.

    Without kept rows this is ``allocate``. With them, each cluster is filled towards its share
    of ``total``; clusters already past their share by kept rows give no slack back.
    """
    if not kept.any():
        return allocate(sizes, total, scheme)
    target = allocate(sizes, total, scheme)
    gaps = np.maximum(target - kept, 0)
    want = max(0, min(total, int(sizes.sum())) - int(kept.sum()))
    new = allocate(gaps, min(want, int(gaps.sum())), "proportional") if gaps.any() else gaps
    short = want - int(new.sum())
    if short > 0:  # every gap filled and budget left: spread it over the remaining room
        new += allocate(sizes - kept - new, short, scheme)
    return new


class CentroidSelector(ClusterSelector):
    """Nearest to each cluster centre (the original method): typical, but edges and rare modes out."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        return np.argsort(self.distances_[candidates], kind="stable")[:quota]


class RandomSelector(ClusterSelector):
    """Uniform random over the whole group (seeded); the baseline. Clusters only for the record."""

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        pool = np.setdiff1d(np.arange(len(X)), kept)
        return rng.choice(pool, size=min(budget, len(pool)), replace=False)


class StratifiedSelector(ClusterSelector):
    """Uniform random inside each cluster, cluster quotas from the allocation (seeded)."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        return rng.permutation(len(candidates))[:quota]


class KCenterSelector(ClusterSelector):
    """Greedy farthest-point (k-center) coverage in each cluster: edges and rare modes first."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        start = int(np.argmin(self.distances_[candidates])) if not len(kept) else None
        return farthest_first(X[candidates], X[kept], quota, start)


class TypicalSelector(ClusterSelector):
    """TypiClust: split each cluster into quota parts, take the densest (kNN) image of each.

    ``typicality_`` (after fit): 1 / mean distance to the 20 nearest neighbours in the row's
    cluster; higher = more typical (NaN where no clustering ran).
    """

    n_neighbors = 20

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        self.typicality_ = np.full(len(X), np.nan)
        for c in range(self.k_):
            rows = np.flatnonzero(self.labels_ == c)
            self.typicality_[rows] = typicality(X[rows], self.n_neighbors)
        return super()._select(X, kept, budget, rng)

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        from repsample.cluster import fit_kmeans

        order = np.argsort(-self.typicality_[candidates], kind="stable")
        if quota == 1 or quota >= len(candidates):
            return order
        seed = int(rng.randint(0, 2**31 - 1))
        parts = fit_kmeans(X[candidates], quota, seed).labels_
        best = [order[parts[order] == p][0] for p in np.unique(parts[order])]
        rest = order[~np.isin(order, best)]  # parts that came out empty: next most typical
        return np.concatenate([np.asarray(best, dtype=np.int64), rest])


class FacilitySelector(ClusterSelector):
    """Greedy facility location on a sparse kNN similarity: every image well represented."""

    n_neighbors = 20

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        rows = np.concatenate([candidates, kept])
        start = np.arange(len(candidates), len(rows))
        picked = facility_greedy(X[rows], quota, start, self.n_neighbors)
        return picked


class HerdingSelector(ClusterSelector):
    """Kernel herding in each cluster: picks whose spread tracks the cluster's (least MMD)."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, cluster: int, quota: int,
        rng: Rng,
    ) -> np.ndarray:
        rows = np.concatenate([candidates, kept])
        return kernel_herding(X[rows], quota, np.arange(len(candidates), len(rows)), rng)


STRATEGIES: Registry[type[ClusterSelector]] = Registry("strategy")
STRATEGIES.register("centroid", CentroidSelector)
STRATEGIES.register("random", RandomSelector)
STRATEGIES.register("stratified", StratifiedSelector)
STRATEGIES.register("kcenter", KCenterSelector)
STRATEGIES.register("typical", TypicalSelector)
STRATEGIES.register("facility", FacilitySelector)
STRATEGIES.register("herding", HerdingSelector)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def strategy_summary(name: str) -> str:
    doc = STRATEGIES.get(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
