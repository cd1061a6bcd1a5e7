"""Simplex weights for the selected rows: on the simplex, optimal (KKT, and against scipy's own
solve), uniform for a whole group, never worse than uniform, and deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from repsample.selection.kernel import gaussian, length_scale, mean_embedding
from repsample.selection.weights import (
    MAX_SOLVED,
    REFERENCE_ROWS,
    Weigher,
    cell_shares,
    duality_gap,
    project_simplex,
    simplex_weights,
    solve_simplex,
)


def problem(X: np.ndarray, picks: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """K_SS and mu_S as simplex_weights poses them (the whole group as reference: n is small)."""
    assert len(X) <= REFERENCE_ROWS
    scale = length_scale(X, seed)
    S = X[picks].astype(np.float64)
    return gaussian(S, S, scale), mean_embedding(S, np.arange(len(S)), X.astype(np.float64), scale)


def objective(w: np.ndarray, K: np.ndarray, mu: np.ndarray) -> float:
    return float(w @ K @ w - 2 * w @ mu)


@st.composite
def groups(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A group of 2-80 rows in 1-12 dimensions (blobs or a line, some rows repeated) and a
    subset of 1..n of them in any order."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, d = draw(st.integers(2, 80)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(["normal", "blobs", "line"]))
    if kind == "normal":
        X = rng.normal(size=(n, d))
    elif kind == "blobs":
        X = rng.normal(size=(n, d)) + 6 * rng.integers(0, 3, (n, 1))
    else:
        X = np.outer(rng.uniform(-3, 3, n), rng.normal(size=d))
    if draw(st.booleans()):
        X[: n // 3] = X[0]  # exact repeats: a singular kernel matrix
    m = draw(st.integers(1, n))
    return X.astype(np.float32), rng.permutation(n)[:m]


@settings(max_examples=80, deadline=None)
@given(groups(), st.integers(0, 1000))
def test_weights_are_on_the_simplex_and_optimal(group: tuple[np.ndarray, np.ndarray],
                                                seed: int) -> None:
    X, picks = group
    w = simplex_weights(X, picks, seed=seed)
    assert w.dtype == np.float64 and w.shape == (len(picks),)
    assert (w >= 0).all() and abs(w.sum() - 1) <= 1e-12
    K, mu = problem(X, picks, seed)
    # KKT: no pick has a gradient lower than the weighted mean gradient (the duality gap)
    if duality_gap(w, 2 * (K @ w - mu)) > 1e-8:
        # Found by this test (40 rows on a line, 14 picks): a kernel matrix singular to the last
        # digits (condition 3.6e17) leaves a gap of 1.1e-8 that no solver turns into a lower
        # objective; there, the objective must be the best scipy's SLSQP finds, from uniform or w.
        assert np.linalg.cond(K) > 1e12
        assert objective(w, K, mu) <= min(slsqp(K, mu, start) for start in (None, w)) + 1e-12
    uniform = np.full(len(picks), 1 / len(picks))
    assert objective(w, K, mu) <= objective(uniform, K, mu) + 1e-12


def slsqp(K: np.ndarray, mu: np.ndarray, start: np.ndarray | None = None) -> float:
    """The objective's minimum over the simplex as scipy's SLSQP finds it (from uniform)."""
    m = len(mu)
    reference = minimize(lambda w: objective(w, K, mu), np.full(m, 1 / m) if start is None else start,
                         jac=lambda w: 2 * (K @ w - mu), method="SLSQP", bounds=[(0, 1)] * m,
                         constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                         options={"ftol": 1e-14, "maxiter": 500})
    return float(reference.fun)


@settings(max_examples=25, deadline=None)
@given(groups())
def test_the_solve_matches_scipys(group: tuple[np.ndarray, np.ndarray]) -> None:
    X, picks = group
    K, mu = problem(X, picks)
    ours = objective(solve_simplex(K, mu), K, mu)
    assert ours <= slsqp(K, mu) + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_a_whole_group_is_weighted_uniformly_to_the_last_digit(n: int, d: int, seed: int) -> None:
    X = np.random.default_rng(seed).normal(size=(n, d))
    order = np.random.default_rng(seed).permutation(n)
    w = simplex_weights(X, order, seed=seed)
    assert (w == 1 / n).all()


def weighted_mmd(X: np.ndarray, picks: np.ndarray, w: np.ndarray, scale: float) -> float:
    """MMD between the group and its picks weighted by w, under selection's kernel."""
    kxx = gaussian(X, X, scale).mean()
    kxs = gaussian(X, X[picks], scale).mean(axis=0) @ w
    return float(np.sqrt(max(kxx - 2 * kxs + w @ gaussian(X[picks], X[picks], scale) @ w, 0)))


@pytest.mark.parametrize("seed", range(5))
def test_weighted_mmd_is_at_most_uniforms(seed: int) -> None:
    """Two blobs, 3:1, and a subset that holds them 1:1: the weights restore the shares."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (300, 5)), rng.normal(5, 1, (100, 5))])
    picks = np.r_[rng.choice(300, 10, replace=False), 300 + rng.choice(100, 10, replace=False)]
    w = simplex_weights(X, picks, seed=seed)
    scale = length_scale(X, seed)
    uniform = np.full(20, 1 / 20)
    assert weighted_mmd(X, picks, w, scale) < 0.8 * weighted_mmd(X, picks, uniform, scale)
    assert 0.6 < w[:10].sum() < 0.9  # the big blob stands for 3/4 of the group


def test_weights_are_deterministic_for_a_seed() -> None:
    """A group above REFERENCE_ROWS: its reference is a seeded sample."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(REFERENCE_ROWS + 500, 8)).astype(np.float32)
    picks = rng.choice(len(X), 60, replace=False)
    first = simplex_weights(X, picks, seed=3)
    assert np.array_equal(first, simplex_weights(X, picks, seed=3))
    assert abs(first.sum() - 1) <= 1e-12 and (first >= 0).all()
    # one Weigher for several subsets gives what separate calls give
    weigher = Weigher(X, seed=3)
    assert np.array_equal(weigher.weights(picks), first)
    assert np.allclose(weigher.weights(picks[::-1]), first[::-1], rtol=0, atol=1e-9)  # sums' order


def test_float16_vectors_are_weighed_as_float32() -> None:
    X = np.random.default_rng(1).normal(0, 40, size=(50, 1280))  # squared distances past float16's
    picks = np.arange(0, 50, 5)
    w16 = simplex_weights(X.astype(np.float16), picks)
    assert np.isfinite(w16).all() and abs(w16.sum() - 1) <= 1e-12
    assert np.allclose(w16, simplex_weights(X.astype(np.float16).astype(np.float32), picks))


def test_one_pick_and_no_pick() -> None:
    X = np.random.default_rng(0).normal(size=(10, 3))
    assert simplex_weights(X, np.array([4])).tolist() == [1.0]
    assert simplex_weights(X, np.array([], dtype=np.int64)).shape == (0,)


def test_bad_rows_are_refused() -> None:
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="outside"):
        simplex_weights(X, np.array([0, 5]))
    with pytest.raises(ValueError, match="twice"):
        simplex_weights(X, np.array([1, 1]))


def test_above_max_solved_each_pick_gets_its_cell() -> None:
    X = np.random.default_rng(0).normal(size=(MAX_SOLVED + 200, 3)).astype(np.float32)
    picks = np.arange(MAX_SOLVED + 1)
    w = simplex_weights(X, picks)
    assert np.array_equal(w, cell_shares(X, picks))
    assert abs(w.sum() - 1) <= 1e-12 and (w >= 1 / len(X)).all()  # each pick is in its own cell


def test_cell_shares_count_the_nearest_rows() -> None:
    X = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [9.0]])
    assert cell_shares(X, np.array([0, 4])).tolist() == [4 / 6, 2 / 6]
    assert cell_shares(X, np.array([5, 1])).tolist() == [2 / 6, 4 / 6]  # 5.0 is nearer 9 than 0.1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40))
def test_the_projection_is_the_nearest_point_of_the_simplex(values: list[float]) -> None:
    v = np.asarray(values)
    w = project_simplex(v)
    assert (w >= 0).all() and abs(w.sum() - 1) <= 1e-12
    # the projection's optimality: w = max(v - theta, 0) for one threshold theta
    support = w > 0
    theta = v[support] - w[support]
    assert np.ptp(theta) <= 1e-9 * max(1.0, np.abs(v).max())
    assert (v[~support] <= theta.mean() + 1e-9 * max(1.0, np.abs(v).max())).all()


def test_the_sum_direction_does_not_slow_the_solve() -> None:
    """High-dimensional rows: every off-diagonal kernel value near one constant, so K's largest
    eigenvalue (the all-ones direction, ~m x that constant) dwarfs the rest; steps sized by it
    would take thousands of rounds. Sized on the sum-zero directions, the solve converges."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 512)).astype(np.float32)
    picks = rng.choice(1500, 300, replace=False)
    K, mu = problem(X, picks)
    w = solve_simplex(K, mu, max_steps=400)
    assert duality_gap(w, 2 * (K @ w - mu)) <= 1e-9
