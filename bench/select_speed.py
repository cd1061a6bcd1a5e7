"""Micro-bench: choose k + select (the default: herding, proportional) against the code before
issue 12's speed-up, in one run.

    python bench/select_speed.py [--sizes 2000 20000] [--budget 1000]

The vectors are synthetic clustered non-negative 1280-d vectors (like pooled CNN features: a
gamma-distributed mode profile per cluster, scaled per row, plus sparse noise), not embeddings of
real images. The baseline (``old_choose_k``, ``old_herding``) is a copy of the previous
implementation and lives here only. Per size it prints both timings, their ratio, and whether
the chosen k and the picked rows are the same.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances, silhouette_samples, silhouette_score

from repsample.selection import cluster
from repsample.selection.cluster import Clustering, choose_k, count_distinct, k_range, sweep_rows
from repsample.selection.strategies import HerdingSelector


def clustered(n: int, dim: int = 1280, modes: int = 12, seed: int = 0) -> np.ndarray:
    """Non-negative vectors around ``modes`` unequal clusters (sizes from a Dirichlet)."""
    r = np.random.RandomState(seed)
    centres = r.gamma(0.6, 0.5, size=(modes, dim))
    labels = r.choice(modes, n, p=r.dirichlet(np.full(modes, 2.0)))
    X = centres[labels] * r.gamma(4, 0.25, size=(n, dim)) + r.gamma(0.3, 0.1, size=(n, dim))
    return X.astype(np.float32)


# ---- the previous implementation (baseline), as it was before the speed-up ----

def old_fit_kmeans(X: np.ndarray, k: int, seed: int, init: np.ndarray | None = None) -> KMeans:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if init is None:
            return KMeans(n_clusters=k, random_state=seed).fit(X)
        return KMeans(n_clusters=k, init=init, n_init=1, max_iter=cluster.FINAL_MAX_ITER,
                      random_state=seed).fit(X)


class OldSilhouette:
    def __init__(self, X: np.ndarray, sample: int | None, seed: int) -> None:
        self.X, self.sample, self.seed = X, sample, seed
        self.rows = None if sample is None else np.random.RandomState(seed).permutation(len(X))[:sample]
        size = len(X) if self.rows is None else len(self.rows)
        self.distances: np.ndarray | None = None
        if size <= cluster.SHARED_DISTANCES_LIMIT:
            self.distances = pairwise_distances(X if self.rows is None else X[self.rows])

    def __call__(self, labels: np.ndarray) -> float:
        if self.distances is None:
            return float(silhouette_score(self.X, labels, sample_size=self.sample,
                                          random_state=self.seed))
        picked = labels if self.rows is None else labels[self.rows]
        return float(np.mean(silhouette_samples(self.distances, picked, metric="precomputed")))


def old_choose_k(X: np.ndarray, k_min: int = 5, k_max: int = 20, seed: int = 42,
                 silhouette_sample: int = 3000) -> Clustering:
    X = np.asarray(X)
    n = len(X)
    rows = sweep_rows(n, seed)
    S = X if rows is None else X[rows]
    ks = k_range(count_distinct(S, at_most=k_max + 1), k_min, k_max)
    sample = silhouette_sample if len(S) > silhouette_sample else None
    silhouette = OldSilhouette(S, sample, seed)
    best: tuple[float, KMeans] | None = None
    found: dict[int, float] = {}
    for k in ks:
        km = old_fit_kmeans(S, k, seed)
        if len(np.unique(km.labels_)) < 2:
            continue
        try:
            score = silhouette(km.labels_)
        except ValueError:
            continue
        found[k] = score
        if best is None or score > best[0]:
            best = (score, km)
    assert best is not None
    km = best[1]
    if rows is not None:
        km = old_fit_kmeans(X, int(km.n_clusters), seed, init=km.cluster_centers_)
    return Clustering(int(km.n_clusters), km.labels_.astype(np.int64), km.cluster_centers_, found,
                      sample, None if rows is None else len(rows))


def old_kernel_herding(
    X: np.ndarray, quota: int, start: np.ndarray, rng: np.random.RandomState,
    sample: int = 2000,
) -> np.ndarray:
    """Kernel herding: greedy picks whose kernel mean tracks the rows' (greedy MMD descent).

    Each pick maximises mean_j k(x, X_j) - sum_{s in S} k(x, s) / (|S| + 1), RBF kernel with the
    median pairwise distance as bandwidth. The mean over X uses a seeded sample of ``sample``
    rows above that size: O(n * sample) time, O(n) memory. Rows at ``start`` are already in S.
    """
    from sklearn.metrics import pairwise_distances

    n = len(X)
    ref = X if n <= sample else X[np.sort(rng.choice(n, sample, replace=False))]
    between = pairwise_distances(ref)
    upper = between[np.triu_indices(len(ref), 1)]
    scale = float(np.median(upper)) if len(upper) and np.median(upper) > 0 else 1.0

    def kernel(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
        return np.asarray(np.exp(-(pairwise_distances(rows, others) ** 2) / (2 * scale**2)))

    target = np.concatenate([kernel(X[i : i + 4096], ref).mean(axis=1)
                             for i in range(0, n, 4096)])
    pull = np.zeros(n)
    taken = np.zeros(n, dtype=bool)
    for j in start:
        pull += kernel(X, X[j : j + 1])[:, 0]
        taken[j] = True
    order: list[int] = []
    for _ in range(min(quota, n - len(start))):
        score = target - pull / (taken.sum() + 1)
        score[taken] = -np.inf
        j = int(np.argmax(score))
        order.append(j)
        pull += kernel(X, X[j : j + 1])[:, 0]
        taken[j] = True
    return np.asarray(order, dtype=np.int64)


class OldHerdingSelector(HerdingSelector):
    def _pick(
        self, X: np.ndarray, candidates: np.ndarray, kept: np.ndarray, quota: int,
        rng: np.random.RandomState,
    ) -> np.ndarray:
        rows = np.concatenate([candidates, kept])
        return old_kernel_herding(X[rows], quota, np.arange(len(candidates), len(rows)), rng)


# ---- the run ----

def timed(run: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = run()
    return time.perf_counter() - t0, result


def select(kind: type[HerdingSelector], X: np.ndarray, budget: int,
           clustering: Clustering) -> np.ndarray:
    selector = kind(budget, allocation="proportional").fit(X, clustering=clustering)
    return np.asarray(selector.selected_indices_)


def measure(n: int, budget: int) -> None:
    X = clustered(n)
    t_old_k, old_c = timed(lambda: old_choose_k(X))
    t_new_k, new_c = timed(lambda: choose_k(X))
    assert isinstance(old_c, Clustering) and isinstance(new_c, Clustering)
    same_k = old_c.k == new_c.k and bool((old_c.labels == new_c.labels).all())
    print(f"{n:>7} {'choose k':<9} {t_old_k:>8.2f} {t_new_k:>8.2f} {t_old_k / t_new_k:>6.1f}x"
          f"  k {old_c.k} vs {new_c.k}, labels {'same' if same_k else 'differ'}")
    # both select on the old clustering, so that only herding differs
    t_old_s, old_rows = timed(lambda: select(OldHerdingSelector, X, budget, old_c))
    t_new_s, new_rows = timed(lambda: select(HerdingSelector, X, budget, old_c))
    same = np.array_equal(np.asarray(old_rows), np.asarray(new_rows))
    print(f"{n:>7} {'herding':<9} {t_old_s:>8.2f} {t_new_s:>8.2f} {t_old_s / t_new_s:>6.1f}x"
          f"  {budget} picks {'same' if same else 'differ'}")
    old_total, new_total = t_old_k + t_old_s, t_new_k + t_new_s
    print(f"{n:>7} {'both':<9} {old_total:>8.2f} {new_total:>8.2f} {old_total / new_total:>6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--budget", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'points':>7} {'stage':<9} {'old s':>8} {'new s':>8} {'ratio':>7}  same result")
    for n in args.sizes:
        measure(n, args.budget)


if __name__ == "__main__":
    main()
