"""Select: scikit-learn estimators that pick a budget of rows from an embedding matrix.

A selector clusters the rows (best-silhouette KMeans), splits the budget across clusters
(an allocation scheme), then picks inside each cluster (the strategy's own rule). With the
allocation ``none`` the clusters set no quotas: the rule picks from the whole group, and the
clusters only describe the picks. Usable on any
matrix: ``CentroidSelector(n_select=100).fit(X).selected_indices_``. Selectors are
scikit-learn estimators (selection/estimator.py, without importing scikit-learn): ``get_params``,
``set_params``, ``clone`` and ``repr`` work as in scikit-learn.

``fit(X, keep=rows)`` keeps earlier picks and adds to them up to ``n_select`` (a grown dataset);
``fit(X, clustering=c)`` reuses a clustering of X (computing one is the costly part), and
``fit(X, clustering=c, picks=p)`` an earlier fit's picks (its ``new_indices_``) on the same X,
parameters and clustering: what a rerun on unchanged data gets from the cache.
``register_strategy(name, cls)`` makes a selector of your own usable by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from repsample.errors import UsageError, mention
from repsample.params import Constraint, Integer, OneOf, Tunable, validate
from repsample.registry import Registry
from repsample.selection.allocate import NO_QUOTAS, allocate, list_selection_allocations
from repsample.selection.cluster import Clustering, choose_k
from repsample.selection.estimator import Estimator, check_rows, random_state
from repsample.selection.greedy import facility_greedy, farthest_first, kernel_herding, typicality
from repsample.selection.names import COVER_SHARE, N_NEIGHBORS
from repsample.selection.refine import POOL_LIMIT, POOL_PER_PICK, refine_select

Rng = np.random.RandomState
Selector = TypeVar("Selector", bound="ClusterSelector")


class ClusterSelector(Estimator):
    """Base class: cluster, allocate, then ``_pick`` inside each cluster.

    Parameters
    ----------
    n_select: how many rows to keep; a matrix with no more rows than that is kept whole,
        without clustering.
    allocation: how the budget is split across clusters (see ``repsample.list_allocations``), or
        ``none``: no cluster quotas, the strategy's rule picks from the whole group.
    k_min, k_max: the range of cluster counts tried.
    silhouette_sample: above this many rows, the silhouette uses a seeded sample of this size.
    random_state: seed (int) for KMeans, the silhouette sample and any random choice.

    Parameters are stored as given and checked by ``fit`` against ``_parameter_constraints``.

    Attributes after ``fit``: ``selected_indices_`` (sorted), ``kept_indices_`` (rows kept from
    ``keep``), ``n_features_in_``, ``labels_`` (-1 where no clustering ran), ``k_``,
    ``cluster_centers_``, ``distances_`` (each row to its centre), ``silhouette_scores_``
    ({k: score}), ``silhouette_sample_``, ``quotas_`` (per cluster, kept rows included),
    ``new_indices_`` (the rows added to the kept ones, in pick order) and ``pick_order_`` (per
    row, its order of selection within its cluster, 1 = first; 0 = not selected).
    """

    # Each parameter's allowed values, checked at fit (scikit-learn's _parameter_constraints).
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_select": Integer(1),
        "allocation": OneOf(list_selection_allocations),
        "k_min": Integer(1),
        "k_max": Integer(1),
        "silhouette_sample": Integer(100),  # as SelectConfig: a smaller sample is mostly noise
        "random_state": Integer(0, 2**32 - 1, optional=True),
    }
    # The strategy's own parameters, settable by name (SelectConfig.strategy_params); the ones
    # above are SelectConfig's fields. A subclass that adds one declares it here too.
    tunable: ClassVar[tuple[Tunable, ...]] = ()

    def __init__(
        self,
        n_select: int = 1000,
        *,
        allocation: str = "proportional",
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

    def _validate_params(self) -> None:
        """Every parameter against its constraint (a UsageError naming it), then k_min <= k_max."""
        validate(self.get_params(deep=False), self._parameter_constraints)
        if self.k_min > self.k_max:
            raise UsageError(f"must be at most {mention('k_max')} ({self.k_max}), got {self.k_min}",
                             option="k_min")

    def fit(
        self: Selector, X: Any, y: object = None, *, keep: Sequence[int] | None = None,
        clustering: Clustering | None = None, picks: Sequence[int] | np.ndarray | None = None,
    ) -> Selector:
        """Select ``n_select`` rows of X (rows = images); returns self.

        ``y`` is ignored: selection is unsupervised, the argument is there for scikit-learn's
        ``fit(X, y)`` convention. ``keep``: rows that must stay selected (an earlier selection);
        ``clustering``: a clustering of X to use instead of computing one; ``picks``: the
        ``new_indices_`` of a fit with the same X, parameters, keep and clustering, taken as
        they are instead of picking again (a rerun's case: the strategy's work is not redone).
        """
        self._validate_params()
        X = check_rows(X)
        kept = _kept_rows(keep, len(X))
        n = len(X)
        self.n_features_in_ = X.shape[1]
        self.kept_indices_ = kept
        if n <= self.n_select:
            self._no_clustering(X)
            self.selected_indices_ = np.arange(n)
            self.new_indices_ = np.setdiff1d(self.selected_indices_, kept)
            return self
        if clustering is None:
            clustering = choose_k(X, self.k_min, self.k_max, self.random_state,  # type: ignore[arg-type]
                                  self.silhouette_sample)
        elif len(clustering.labels) != n:
            raise UsageError(f"has {len(clustering.labels)} labels for {n} rows", option="clustering")
        self.k_ = clustering.k
        self.labels_ = clustering.labels
        self.cluster_centers_ = clustering.centers
        self.silhouette_scores_: dict[int, float] = clustering.silhouettes
        self.silhouette_sample_: int | None = clustering.silhouette_sample
        self.distances_ = centre_distances(X, self.cluster_centers_, self.labels_)
        budget = max(0, int(self.n_select) - len(kept))
        self._describe(X)
        if picks is None:
            new = self._select(X, kept, budget, random_state(self.random_state))
        else:
            new = _earlier_picks(picks, kept, n, budget)
        self.new_indices_ = np.asarray(new, dtype=np.int64)
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

    def _describe(self, X: np.ndarray) -> None:
        """Fitted attributes of the strategy's own, set once the clustering is (picks reused or not)."""

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        """Rows to add to ``kept``: split ``budget`` across clusters, then pick in each (or, with
        no quotas, in the whole group)."""
        if self.allocation == NO_QUOTAS:
            return self._whole(X, kept, budget, rng)
        return self._fill(X, kept, self._quotas(kept, budget), rng)

    def _whole(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        """``budget`` rows by the strategy's ``_pick`` over the whole group, as one cluster."""
        free = np.setdiff1d(np.arange(len(X)), kept)
        picked: np.ndarray = free[self._pick(X, free, kept, min(budget, len(free)), rng)[:budget]]
        return picked

    def _quotas(self, kept: np.ndarray, budget: int) -> np.ndarray:
        """New picks per cluster: the allocation of kept + budget, less what is kept."""
        sizes = np.bincount(self.labels_, minlength=self.k_)
        kept_per = np.bincount(self.labels_[kept], minlength=self.k_)
        return top_up(sizes, kept_per, len(kept) + budget, self.allocation)

    def _fill(self, X: np.ndarray, kept: np.ndarray, quotas: np.ndarray, rng: Rng) -> np.ndarray:
        """``quotas[c]`` new rows from each cluster c by the strategy's ``_pick``."""
        chosen = [np.empty(0, dtype=np.int64)]
        is_kept = np.zeros(len(X), dtype=bool)
        is_kept[kept] = True
        for c in np.flatnonzero(quotas):
            in_c = self.labels_ == c
            candidates = np.flatnonzero(in_c & ~is_kept)
            picked = self._pick(X, candidates, np.flatnonzero(in_c & is_kept), int(quotas[c]), rng)
            chosen.append(candidates[picked[: quotas[c]]])
        return np.concatenate(chosen)

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        """Positions in ``candidates`` (rows of one cluster not kept) to take, best first.

        ``kept`` are the cluster's rows kept from an earlier selection; ``quota`` <= candidates.
        """
        raise NotImplementedError


def centre_distances(X: np.ndarray, centers: np.ndarray, labels: np.ndarray,
                     block: int = 8192) -> np.ndarray:
    """Each row's distance to its cluster's centre, a block of rows at a time: the same values as
    one ``norm(X - centers[labels])``, without its two n x dim temporaries (1 GB at 100,000 x 1280)."""
    out = np.empty(len(X), dtype=np.result_type(X.dtype, centers.dtype))
    for start in range(0, len(X), block):
        rows = slice(start, start + block)
        out[rows] = np.linalg.norm(X[rows] - centers[labels[rows]], axis=1)
    return out


def _kept_rows(keep: Sequence[int] | None, n: int) -> np.ndarray:
    """``keep`` as sorted, distinct row numbers, each inside 0..n-1."""
    kept = np.unique(np.asarray(keep if keep is not None else [], dtype=np.int64))
    if len(kept) and (kept[0] < 0 or kept[-1] >= n):
        raise UsageError(f"holds row numbers outside 0..{n - 1}", option="keep")
    return kept


def are_new_rows(new: np.ndarray, kept: Sequence[int] | np.ndarray, n: int) -> bool:
    """Whether ``new`` (int rows, 1-d) can be what a fit of n rows added to ``kept``: distinct,
    inside 0..n-1, none kept."""
    return bool(len(np.unique(new)) == len(new) and not np.isin(new, kept).any()
                and (not len(new) or (new.min() >= 0 and new.max() < n)))


def _earlier_picks(picks: Sequence[int] | np.ndarray, kept: np.ndarray, n: int, budget: int) -> np.ndarray:
    """``picks`` as new rows: distinct, inside 0..n-1, none kept, at most ``budget`` of them."""
    new = np.asarray(picks, dtype=np.int64).reshape(-1)
    if len(new) > budget or not are_new_rows(new, kept, n):
        raise UsageError(f"are not the new rows of a fit of {n} rows with {len(kept)} kept and "
                         f"{budget} to add", option="picks")
    return new


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
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
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
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        return rng.permutation(len(candidates))[:quota]


class KCenterSelector(ClusterSelector):
    """Greedy farthest-point (k-center) coverage in each cluster: edges and rare modes first."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        start = int(np.argmin(self.distances_[candidates])) if not len(kept) else None
        return farthest_first(X[candidates], X[kept], quota, start)


class NeighbourSelector(ClusterSelector):
    """A selector whose rule reads each row's ``n_neighbors`` nearest rows in its cluster.

    Parameters: those of ``ClusterSelector``, and ``n_neighbors`` (kNN size, capped at the
    cluster's size - 1).
    """

    tunable = (N_NEIGHBORS,)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **ClusterSelector._parameter_constraints, N_NEIGHBORS.name: N_NEIGHBORS.constraint}

    def __init__(
        self,
        n_select: int = 1000,
        *,
        allocation: str = "proportional",
        k_min: int = 5,
        k_max: int = 20,
        n_neighbors: int = N_NEIGHBORS.default,
        silhouette_sample: int = 3000,
        random_state: int | None = 42,
    ) -> None:
        super().__init__(n_select, allocation=allocation, k_min=k_min, k_max=k_max,
                         silhouette_sample=silhouette_sample, random_state=random_state)
        self.n_neighbors = n_neighbors


class TypicalSelector(NeighbourSelector):
    """TypiClust: split each cluster into quota parts, take the densest (kNN) image of each.

    ``typicality_`` (after fit): 1 / mean distance to the ``n_neighbors`` nearest neighbours in
    the row's cluster; higher = more typical (NaN where no clustering ran).
    """

    def _no_clustering(self, X: np.ndarray) -> None:
        super()._no_clustering(X)
        self.typicality_ = np.full(len(X), np.nan)

    def _describe(self, X: np.ndarray) -> None:
        self.typicality_ = np.full(len(X), np.nan)
        for c in range(self.k_):
            rows = np.flatnonzero(self.labels_ == c)
            self.typicality_[rows] = typicality(X[rows], self.n_neighbors)

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        from repsample.selection.cluster import fit_kmeans

        order = np.argsort(-self.typicality_[candidates], kind="stable")
        if quota == 1 or quota >= len(candidates):
            return order
        seed = int(rng.randint(0, 2**31 - 1))
        parts = fit_kmeans(X[candidates], quota, seed).labels
        best = [order[parts[order] == p][0] for p in np.unique(parts[order])]
        rest = order[~np.isin(order, best)]  # parts that came out empty: next most typical
        return np.concatenate([np.asarray(best, dtype=np.int64), rest])


class FacilitySelector(NeighbourSelector):
    """Greedy facility location on a sparse kNN similarity: every image well represented."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        rows = np.concatenate([candidates, kept])
        start = np.arange(len(candidates), len(rows))
        return facility_greedy(X[rows], quota, start, self.n_neighbors)


class HerdingSelector(ClusterSelector):
    """Kernel herding in each cluster: picks whose spread tracks the cluster's (v0.2's default)."""

    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int, rng: Rng
    ) -> np.ndarray:
        rows = np.concatenate([candidates, kept])
        return kernel_herding(X[rows], quota, np.arange(len(candidates), len(rows)), rng)


class RefineSelector(HerdingSelector):
    """Closest to the whole group: kernel herding refined by annealed exchanges (least MMD).

    Greedy herding, then picks exchanged against other images on the exact MMD^2 (annealed, then
    deterministic passes; selection/refine.py): on coreax's blobs benchmark below its best
    published method at every size, on real embeddings 14-26 % closer to the group than herding
    (docs/benchmarks.md). Under cluster quotas each pick is exchanged only within its cluster, so
    the shares hold; with ``allocation="none"`` the whole group is one pool. Budgets beyond
    ``refine.POOL_LIMIT / 3`` images per group are herded without refinement (the pool's kernel
    matrix would pass 600 MB).
    """

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        quotas = None if self.allocation == NO_QUOTAS else self._quotas(kept, budget)
        return self._refine(X, kept, budget, quotas, rng)

    def _refine(self, X: np.ndarray, kept: np.ndarray, budget: int, quotas: np.ndarray | None,
                rng: Rng) -> np.ndarray:
        """``budget`` new rows besides ``kept`` (within ``quotas`` per cluster, None: anywhere)."""
        if budget + len(kept) > POOL_LIMIT // POOL_PER_PICK:  # too large a pool: herding alone
            return self._whole(X, kept, budget, rng) if quotas is None else self._fill(X, kept, quotas, rng)
        seed = int(rng.randint(0, 2**31 - 1))
        return refine_select(X, kept, budget, seed, None if quotas is None else self.labels_, quotas)


class CoverSelector(RefineSelector):
    """Coverage first, then refinement: the farthest images take a share of the budget, refine the rest.

    Varied and representative at once: farthest-first (k-center) over the whole group picks
    ``cover_share`` of the budget, reaching the edges and small modes that a rule tracking the
    bulk leaves out at small budgets; refine (herding, then exchanges on the MMD) fills the rest
    around those picks. Both keep to the allocation's cluster quotas, so cluster shares are
    refine's. ``cover_share`` 0 is refine; docs/benchmarks.md measures 0.2 (the default).
    """

    tunable = (COVER_SHARE,)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **ClusterSelector._parameter_constraints, COVER_SHARE.name: COVER_SHARE.constraint}

    def __init__(
        self,
        n_select: int = 1000,
        *,
        allocation: str = "proportional",
        k_min: int = 5,
        k_max: int = 20,
        cover_share: float = COVER_SHARE.default,
        silhouette_sample: int = 3000,
        random_state: int | None = 42,
    ) -> None:
        super().__init__(n_select, allocation=allocation, k_min=k_min, k_max=k_max,
                         silhouette_sample=silhouette_sample, random_state=random_state)
        self.cover_share = cover_share

    def _select(self, X: np.ndarray, kept: np.ndarray, budget: int, rng: Rng) -> np.ndarray:
        free = np.setdiff1d(np.arange(len(X)), kept)
        central = int(np.argmin(np.linalg.norm(X[free] - X.mean(axis=0), axis=1)))
        share = int(np.floor(self.cover_share * budget + 0.5))
        quotas = None if self.allocation == NO_QUOTAS else self._quotas(kept, budget)
        spread = free[farthest_first(X[free], X[kept], share, central, self.labels_[free], quotas)]
        if quotas is not None:
            quotas = quotas - np.bincount(self.labels_[spread], minlength=self.k_)
        rest = self._refine(X, np.union1d(kept, spread), budget - len(spread), quotas, rng)
        return np.concatenate([spread, rest])


STRATEGIES: Registry[type[ClusterSelector]] = Registry("strategy")
STRATEGIES.register("centroid", CentroidSelector)
STRATEGIES.register("random", RandomSelector)
STRATEGIES.register("stratified", StratifiedSelector)
STRATEGIES.register("kcenter", KCenterSelector)
STRATEGIES.register("typical", TypicalSelector)
STRATEGIES.register("facility", FacilitySelector)
STRATEGIES.register("herding", HerdingSelector)
STRATEGIES.register("cover", CoverSelector)
STRATEGIES.register("refine", RefineSelector)


def register_strategy(name: str, cls: type[ClusterSelector]) -> type[ClusterSelector]:
    """Make a selector class usable by name (``select(..., strategy=name)``, ``--strategy``).

    ``cls`` derives from ``ClusterSelector`` and overrides ``_pick`` (picks inside one cluster)
    or ``_select`` (the whole budget); a name already registered is refused.
    """
    if not (isinstance(cls, type) and issubclass(cls, ClusterSelector)):
        raise UsageError(f"must be a subclass of ClusterSelector, got {cls!r}", option="cls")
    return STRATEGIES.register(name, cls)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def strategy_summary(name: str) -> str:
    doc = STRATEGIES.get(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
