"""selection/kmeans.py against scikit-learn's KMeans, which it replaces: the same labels and
centres, bit for bit, from the same starting centres, on any matrix."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from repsample.selection import kmeans
from repsample.selection.cluster import kmeans_plusplus
from repsample.selection.kmeans import lloyd

# scikit-learn warns where repeated rows leave fewer distinct clusters than asked: expected here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def theirs(X: np.ndarray, init: np.ndarray, max_iter: int = 300) -> KMeans:
    with threadpool_limits(limits=1):  # one thread: scikit-learn's sums in the rows' order
        return KMeans(n_clusters=len(init), init=init, n_init=1, max_iter=max_iter).fit(X)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(3, 700), dim=st.integers(1, 37), k=st.integers(1, 12), modes=st.integers(1, 8),
       repeats=st.integers(1, 4), double=st.booleans(), seed=st.integers(0, 2**16))
def test_lloyd_is_scikit_learns_bit_for_bit(n: int, dim: int, k: int, modes: int, repeats: int,
                                            double: bool, seed: int) -> None:
    """Any size (chunks of 256 rows and a remainder, features not a multiple of 4), float32 and
    float64, and repeated rows, where clusters empty out and take the farthest rows."""
    rng = np.random.default_rng(seed)
    rows = max(1, n // repeats)
    centres = rng.normal(0, 4, (modes, dim))
    X = np.repeat(centres[rng.integers(0, modes, rows)] + rng.normal(0, 1, (rows, dim)), repeats, axis=0)
    X = X.astype(np.float64 if double else np.float32)
    k = min(k, len(X))
    init = X[kmeans_plusplus(X - X.mean(axis=0), k, np.random.RandomState(seed))]
    ours, reference = lloyd(X, init), theirs(X, init)
    assert np.array_equal(ours.labels, reference.labels_)
    assert ours.centers.dtype == reference.cluster_centers_.dtype
    assert np.array_equal(ours.centers, reference.cluster_centers_)


@pytest.mark.parametrize("max_iter", [1, 2, 100])
def test_a_warm_start_stopped_early_is_scikit_learns(max_iter: int) -> None:
    """The final fit above SWEEP_LIMIT: given centres and fewer iterations; stopped before
    converging, the labels are those of the last centres."""
    rng = np.random.default_rng(3)
    modes = rng.normal(0, 3, (9, 24))
    X = (modes[rng.integers(0, 9, 1500)] + rng.normal(0, 1, (1500, 24))).astype(np.float32)
    init = X[:9] + 0.5
    ours, reference = lloyd(X, init, max_iter), theirs(X, init, max_iter)
    assert np.array_equal(ours.labels, reference.labels_)
    assert np.array_equal(ours.centers, reference.cluster_centers_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_blas_pointer_and_scipys_wrapper_give_the_same_distances(
        dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """The product goes through the pointer scipy exports for Cython (other threads run
    meanwhile); a scipy without it falls back to its Python wrapper: the same numbers."""
    rng = np.random.default_rng(0)
    rows, centers = rng.normal(size=(300, 37)).astype(dtype), rng.normal(size=(7, 37)).astype(dtype)
    norms = np.einsum("ij,ij->i", centers, centers)
    through_pointer, through_wrapper = np.tile(norms, (300, 1)), np.tile(norms, (300, 1))
    kmeans._gemm.cache_clear()
    kmeans._gemm(np.dtype(dtype))(rows, centers, through_pointer)
    monkeypatch.setattr(kmeans.cython_blas, "__pyx_capi__", {})
    kmeans._gemm.cache_clear()
    kmeans._gemm(np.dtype(dtype))(rows, centers, through_wrapper)
    kmeans._gemm.cache_clear()
    assert np.array_equal(through_pointer, through_wrapper)
    np.testing.assert_allclose(through_pointer, norms - 2 * rows @ centers.T, rtol=1e-4, atol=1e-4)


def test_a_run_fits_here_until_its_fits_would_cost_more_than_the_import(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sklearn.cluster")  # as in a run that has not imported it
    monkeypatch.setattr(kmeans, "_work_done", 0)
    assert kmeans.fitter(2000, 1280, 16) is kmeans.lloyd  # a 2,000-row group's sweep
    assert kmeans.fitter(2000, 1280, 16) is kmeans.lloyd  # and a second one
    assert kmeans.fitter(2000, 1280, 16) is kmeans.sklearn_lloyd  # a third would cost more
    monkeypatch.setattr(kmeans, "_work_done", 0)
    assert kmeans.fitter(10_000, 1280, 16) is kmeans.sklearn_lloyd  # one large sweep: at once
    monkeypatch.setitem(sys.modules, "sklearn.cluster", object())
    assert kmeans.fitter(10, 2, 1) is kmeans.sklearn_lloyd  # imported already: nothing to spare


def test_the_sweep_is_the_same_whichever_makes_its_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """choose_k with every fit made here and with every fit scikit-learn's, in its threads."""
    from repsample.selection import cluster

    rng = np.random.default_rng(5)
    X = (rng.normal(0, 3, (7, 16))[rng.integers(0, 7, 900)] + rng.normal(0, 1, (900, 16))).astype(np.float32)
    made = {}
    for name, fit in (("here", kmeans.lloyd), ("scikit-learn", kmeans.sklearn_lloyd)):
        monkeypatch.setattr(cluster, "fitter", lambda *_, fit=fit: fit)
        made[name] = cluster.choose_k(X, 3, 12, 42)
    here, theirs = made["here"], made["scikit-learn"]
    assert here.k == theirs.k and here.silhouettes == theirs.silhouettes
    assert np.array_equal(here.labels, theirs.labels) and np.array_equal(here.centers, theirs.centers)
