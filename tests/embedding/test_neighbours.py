"""embedding.neighbours: the one nearest-neighbour search (faiss) and the one typicality that
selection, hygiene and evaluate share."""

from __future__ import annotations

import numpy as np
import pytest

from repsample.embedding.neighbours import knn, nearest_of, typicality, unit_rows
from repsample.hygiene.outliers import image_scores
from repsample.selection import greedy
from repsample.selection.strategies import TypicalSelector


def brute(queries: np.ndarray, base: np.ndarray, k: int, own: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 answer: every distance as a norm of differences, ties to the lower row."""
    d = np.linalg.norm(queries[:, None, :].astype(np.float64) - base[None].astype(np.float64), axis=2)
    if own:
        np.fill_diagonal(d, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(base)), d.shape), d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), order


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (5, dim))
    return (centres[rng.integers(0, 5, n)] + rng.normal(0, 1, (n, dim))).astype(np.float32)


@pytest.mark.parametrize(("n", "dim"), [(300, 8), (200, 256)])
def test_knn_is_the_exact_search(n: int, dim: int) -> None:
    X = clustered(n, dim)
    X = np.vstack([X, X[:7]])  # exact copies: a row is still not its own neighbour
    distances, rows = knn(X, 10)
    expected_distances, expected_rows = brute(X, X, 10, own=True)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    assert (rows != np.arange(len(X))[:, None]).all()
    assert (distances[:7, 0] == 0).all() and (rows[:7, 0] == np.arange(n, n + 7)).all()


def test_knn_caps_k_and_a_lone_row_has_no_neighbour() -> None:
    X = clustered(4, 3)
    assert knn(X, 10)[0].shape == (4, 3)
    distances, rows = knn(X[:1], 5)
    assert distances.shape == rows.shape == (1, 0)
    assert np.isnan(typicality(distances)).all()


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e10])
def test_long_or_tiny_vectors_find_the_same_neighbours(scale: float) -> None:
    """faiss searches in float32 on a centred, scaled copy: neither overflow nor underflow."""
    X = clustered(150, 16).astype(np.float64)
    assert (knn(X * scale, 5)[1] == knn(X, 5)[1]).all()


def test_nearest_of_finds_each_pick_exactly_zero_away() -> None:
    X = clustered(400, 64)
    picks = np.array([3, 50, 51, 200, 399])
    distances, rows = nearest_of(X, X[picks])
    expected_distances, expected_rows = brute(X, X[picks], 1, own=False)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    assert (distances[picks, 0] == 0).all() and (rows[picks, 0] == np.arange(len(picks))).all()


def test_the_selector_and_the_manifest_share_one_typicality() -> None:
    """One definition: on unit-length rows, the selector's (Euclidean search) and the manifest
    column's (cosine search) agree; each applies it to the rows it sees."""
    U = unit_rows(clustered(120, 32))
    np.testing.assert_allclose(greedy.typicality(U, 20), image_scores(U).typicality, rtol=1e-4)
    X = clustered(200, 8, seed=1)
    selector = TypicalSelector(10, k_min=2, k_max=3, n_neighbors=7).fit(X)
    for c in range(selector.k_):
        rows = np.flatnonzero(selector.labels_ == c)
        np.testing.assert_array_equal(selector.typicality_[rows], typicality(knn(X[rows], 7)[0]))
