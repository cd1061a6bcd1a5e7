"""The float32 fast paths of choose k and herding against the scikit-learn code they replace."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.cluster._kmeans import _kmeans_plusplus
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.utils.extmath import row_norms
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from repsample.selection.cluster import choose_k, euclidean, fit_kmeans, kmeans_plusplus, silhouette_mean
from repsample.selection.greedy import median_distance


def clustered(n: int, dim: int = 64, modes: int = 6, seed: int = 0) -> np.ndarray:
    r = np.random.RandomState(seed)
    centres = r.gamma(0.6, 0.5, size=(modes, dim))
    labels = r.choice(modes, n, p=r.dirichlet(np.full(modes, 2.0)))
    return (centres[labels] * r.gamma(4, 0.25, size=(n, dim))).astype(np.float32)


@pytest.mark.parametrize("k", [2, 5, 13, 20])
def test_kmeans_plusplus_draws_what_sklearn_draws(k: int) -> None:
    X = clustered(400)
    centred = X - X.mean(axis=0)
    _, theirs = _kmeans_plusplus(centred, k, row_norms(centred, squared=True),
                                 np.ones(len(X), dtype=X.dtype), np.random.RandomState(42))
    assert kmeans_plusplus(centred, k, np.random.RandomState(42)).tolist() == theirs.tolist()
    looked_up = kmeans_plusplus(centred, k, np.random.RandomState(42), euclidean(X))
    assert looked_up.tolist() == theirs.tolist()


@pytest.mark.parametrize("k", [5, 9])
def test_fit_kmeans_is_the_originals(k: int) -> None:
    X = clustered(500)
    with threadpool_limits(limits=1):  # one thread, as in the sweep: the sums in the rows' order
        ours = fit_kmeans(X, k, 42)
        theirs = KMeans(n_clusters=k, random_state=42).fit(X)
    assert np.array_equal(ours.labels, theirs.labels_)
    assert np.array_equal(ours.centers, theirs.cluster_centers_)


def test_the_sweep_run_side_by_side_is_the_sweep_run_in_turn() -> None:
    """The k sweep fits its ks in a pool of threads: each fit is still the fit made alone in the
    calling thread, bit for bit."""
    X = clustered(1200, modes=9)
    chosen = choose_k(X, 3, 12, 42)
    for k in (3, chosen.k, 12):
        with threadpool_limits(limits=1):
            alone = fit_kmeans(X, k, 42, distances=euclidean(X))
            assert chosen.silhouettes[k] == silhouette_mean(euclidean(X), alone.labels)
        if k == chosen.k:
            assert np.array_equal(chosen.labels, alone.labels)
            assert np.array_equal(chosen.centers, alone.centers)


def test_silhouette_mean_is_sklearns() -> None:
    X = clustered(300)
    labels = KMeans(n_clusters=6, random_state=0).fit(X).labels_
    labels[0] = 7  # a point alone in its cluster: silhouette 0
    ours = silhouette_mean(euclidean(X), labels)
    assert ours is not None
    assert ours == pytest.approx(silhouette_score(X, labels), abs=1e-5)
    assert silhouette_mean(euclidean(X), np.zeros(len(X), dtype=np.int64)) is None


def test_euclidean_matches_pairwise_distances() -> None:
    X = clustered(200)
    D = euclidean(X)
    assert D.dtype == np.float32 and (np.diag(D) == 0).all()
    np.testing.assert_allclose(D, pairwise_distances(X.astype(np.float64)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 9, 40])
def test_median_distance_is_numpys(m: int) -> None:
    X = np.random.RandomState(m).rand(m, 5)
    squared = ((X[:, None] - X[None]) ** 2).sum(-1)
    upper = np.sqrt(squared[np.triu_indices(m, 1)])
    expected = float(np.median(upper)) if len(upper) else 0.0
    assert median_distance(squared) == pytest.approx(expected, rel=1e-12)


def reference_herding(X: np.ndarray, quota: int, start: np.ndarray, rng: np.random.RandomState,
                      sample: int) -> list[int]:
    """The rule written out in float64, every kernel value from scratch."""
    n = len(X)
    ref = X if n <= sample else X[np.sort(rng.choice(n, sample, replace=False))]
    between = pairwise_distances(ref.astype(np.float64))
    scale = float(np.median(between[np.triu_indices(len(ref), 1)]))
    K = np.exp(-pairwise_distances(X.astype(np.float64), ref.astype(np.float64)) ** 2
               / (2 * scale**2))
    full = np.exp(-pairwise_distances(X.astype(np.float64)) ** 2 / (2 * scale**2))
    chosen = list(start)
    order: list[int] = []
    for _ in range(quota):
        score = K.mean(axis=1) - full[:, chosen].sum(axis=1) / (len(chosen) + 1)
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        order.append(j)
        chosen.append(j)
    return order


@pytest.mark.parametrize(("sample", "start"), [(1000, []), (120, []), (120, [3, 50])])
def test_herding_picks_as_the_rule_says(sample: int, start: list[int]) -> None:
    from repsample.selection.greedy import kernel_herding

    X = clustered(300)
    ours = kernel_herding(X, 25, np.array(start, dtype=np.int64), np.random.RandomState(1), sample)
    expected = reference_herding(X, 25, np.array(start, dtype=np.int64), np.random.RandomState(1),
                                 sample)
    assert ours.tolist() == expected
