"""Weights for the selected images: the share of its group each one stands for.

The weights are the MMD-optimal ones on the simplex: they minimise the squared MMD between the
weighted subset and the group, ``w'K_SS w - 2 w'mu_S`` (plus a constant), with ``w >= 0`` and
``sum w = 1``, under the kernel selection uses (repsample.selection.kernel). ``mu_S`` is each
pick's mean kernel value over the group, or over a seeded sample of REFERENCE_ROWS of it for a
big group, so memory stays at picks x REFERENCE_ROWS. A user reweights a training loss by them.

The solve is accelerated projected gradient (FISTA with the exact projection onto the simplex
and an adaptive restart), started from uniform; it stops when the Frank-Wolfe duality gap, an
upper bound on how far the objective is from its minimum, falls below GAP. Where a badly
conditioned kernel matrix (near-duplicate picks) keeps it above after MAX_STEPS, exact active-set
rounds from where it stopped finish the solve. Above MAX_SOLVED picks the picks x picks kernel
would not fit in bounded memory, and each pick gets the share of the group's rows nearest to it
(its nearest-neighbour cell) instead.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from repsample.embedding.neighbours import nearest_of
from repsample.errors import UsageError
from repsample.selection.kernel import gaussian, length_scale, mean_embedding

REFERENCE_ROWS = 2000
"""Above this many rows, mu_S is taken over a seeded sample of the group of this size."""
MAX_SOLVED = 4000
"""Picks up to which the weights are solved for (the kernel matrix: 128 MB in float64)."""
GAP = 1e-10
"""The solve stops when the objective is provably within this of its minimum (squared MMD)."""
MAX_STEPS = 1000
"""Accelerated steps at most (well-conditioned problems take 50-200)."""
SHARED_PRODUCTS = 512
"""Picks from which the solve's products with K use every core (0.56 -> 0.31 s at 1,000 picks
on 2 cores; OpenBLAS keeps smaller ones on one thread itself)."""
MAX_POLISHED = 300
"""Picks up to which a solve that stops short of GAP is finished by active-set rounds: a round
solves a system of the support's size and drops one row, and a badly conditioned problem's
optimum can be far sparser than where the accelerated steps stop (6 of 83 rows on a line)."""


def simplex_weights(X: np.ndarray, selected: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each selected row's weight, in the order of ``selected`` (row numbers into X): float64,
    non-negative, summing to 1. Exactly uniform where the picks are every row of X."""
    return Weigher(X, seed).weights(selected)


class Weigher:
    """Weights for any subsets of one group: the kernel's length scale and the reference sample,
    computed once (evaluate weighs several random subsets of a group)."""

    def __init__(self, X: np.ndarray, seed: int = 0) -> None:
        X = np.asarray(X)
        # float16 vectors (a stored --embeddings file) would overflow in the distances
        self.X = X if X.dtype.itemsize >= 4 else X.astype(np.float32)
        self.seed = seed

    @cached_property
    def scale(self) -> float:
        return length_scale(self.X, self.seed)

    @cached_property
    def reference(self) -> np.ndarray:
        """The rows mu_S is taken over: all, or a seeded sample of REFERENCE_ROWS, in float64."""
        n = len(self.X)
        rows = np.arange(n) if n <= REFERENCE_ROWS else np.sort(
            np.random.default_rng(self.seed).choice(n, REFERENCE_ROWS, replace=False))
        return np.asarray(self.X[rows], dtype=np.float64)

    def weights(self, selected: np.ndarray) -> np.ndarray:
        """simplex_weights of these rows."""
        picks = _checked(selected, len(self.X))
        m = len(picks)
        if m == 0:
            return np.zeros(0)
        if m == len(self.X) or m == 1:
            return np.full(m, 1 / m)  # the whole group stands for itself, each row for 1/n
        if m > MAX_SOLVED:
            return cell_shares(self.X, picks)
        S = np.asarray(self.X[picks], dtype=np.float64)
        mu = mean_embedding(S, np.arange(m), self.reference, self.scale)
        return solve_simplex(gaussian(S, S, self.scale), mu)


def cell_shares(X: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Each pick's share of X's rows whose nearest pick it is (ties to the earlier pick)."""
    _, nearest = nearest_of(X, X[picks])
    counts = np.bincount(nearest[:, 0], minlength=len(picks))
    return np.asarray(counts / len(X), dtype=np.float64)


def solve_simplex(K: np.ndarray, mu: np.ndarray, gap: float = GAP,
                  max_steps: int = MAX_STEPS) -> np.ndarray:
    """argmin of ``w'Kw - 2 w'mu`` over the simplex, for a positive semi-definite K: accelerated
    projected gradient from uniform, then, where that stops short of the gap (a badly conditioned
    K: near-duplicate picks, rows on a line), an active-set solve from where it stopped."""
    # Hundreds of steps, each a product with K: below SHARED_PRODUCTS picks one core does them
    # faster than two that wait on each other; above, K outgrows the cache and cores share it.
    with threadpool_limits(limits=1 if len(mu) < SHARED_PRODUCTS else None, user_api="blas"):
        w = _accelerated(K, mu, gap, max_steps)
        if len(mu) > MAX_POLISHED or duality_gap(w, 2 * (K @ w - mu)) <= gap:
            return w
        return _active_set(K, mu, w, gap)


def _accelerated(K: np.ndarray, mu: np.ndarray, gap: float, max_steps: int) -> np.ndarray:
    """FISTA with the exact projection, its step sized on the sum-zero directions and lengthened
    on need, restarted where the objective would rise; stops on the gap or rounding's floor."""
    m = len(mu)
    lipschitz = 2 * _curvature_estimate(K)
    w = np.full(m, 1 / m)
    Kw = K @ w
    y, Ky, t = w, Kw, 1.0
    for _ in range(max_steps):
        if duality_gap(w, 2 * (Kw - mu)) <= gap:
            break
        new = project_simplex(y - 2 * (Ky - mu) / lipschitz)
        K_new = K @ new
        step, K_step = new - y, K_new - Ky
        curvature = 2 * float(step @ K_step) / max(float(step @ step), 1e-300)
        if curvature > lipschitz * (1 + 1e-9):  # the estimate was low: a shorter step, same point
            lipschitz = max(2 * lipschitz, curvature)
            continue
        if _change(new - w, K_new + Kw - 2 * mu) > 0:
            if t == 1.0:  # not even a plain gradient step descends: rounding's floor is reached
                break
            y, Ky, t = w, Kw, 1.0  # momentum overshot: restart it from the current point
            continue
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_next
        y, Ky = new + beta * (new - w), K_new + beta * (K_new - Kw)
        w, Kw, t = new, K_new, t_next
    return w


def _active_set(K: np.ndarray, mu: np.ndarray, w: np.ndarray, gap: float) -> np.ndarray:
    """The primal active-set method (Nocedal and Wright, section 16.5) from the feasible w: each
    round solves the KKT equations on the support, steps toward their solution until a weight
    reaches 0 (which leaves the support), or takes it and admits the row whose gradient is lowest
    below the multiplier. Every step lowers the objective (one that would not ends the rounds)."""
    free = w > 0
    for _ in range(3 * len(mu)):  # each row leaves at most once per time it is admitted
        target = _on_support(K, mu, free)
        falling = np.flatnonzero(free & (target < 0))
        if len(falling):
            ratios = w[falling] / (w[falling] - target[falling])
            new = np.maximum(w + float(ratios.min()) * (target - w), 0.0)
            new[falling[np.argmin(ratios)]] = 0.0  # lands on 0 up to rounding: exactly
        else:
            new = target
        new /= new.sum()
        if _change(new - w, K @ (new + w) - 2 * mu) > 1e-15:  # a near-singular system's answer
            break  # (below that: rounding, as when a repeated pick takes its twin's weight)
        w = new
        free &= w > 0
        if len(falling):
            continue
        gradient = 2 * (K @ w - mu)
        outside = np.flatnonzero(~free)
        if duality_gap(w, gradient) <= gap or not len(outside):
            break
        best = outside[np.argmin(gradient[outside])]
        if gradient[best] >= gradient @ w:  # what gap is left is rounding on the support
            break
        free[best] = True
    return w


def _on_support(K: np.ndarray, mu: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The minimum on the plane sum w = 1 with w = 0 off ``free``: K_FF w_F + nu = mu_F, the
    equations of equal gradients, by least squares with small singular values cut (rows on a
    line or near-duplicate picks make K_FF singular to the last digit)."""
    rows = np.flatnonzero(free)
    s = len(rows)
    A = np.ones((s + 1, s + 1))
    A[:s, :s] = K[np.ix_(rows, rows)]
    A[s, s] = 0.0
    solution = np.linalg.lstsq(A, np.append(mu[rows], 1.0), rcond=1e-12)[0]
    out = np.zeros(len(mu))
    out[rows] = solution[:s]
    return out


def duality_gap(w: np.ndarray, gradient: np.ndarray) -> float:
    """The Frank-Wolfe gap ``g'w - min g``: at least the objective's distance from its minimum
    over the simplex, 0 exactly at a minimum (the KKT conditions)."""
    return float((gradient - gradient.min()) @ w)  # g'w - min g, as sum w = 1, without its rounding


def _change(step: np.ndarray, through: np.ndarray) -> float:
    """The objective's change ``step'(K new + K w - 2 mu)`` for a step that keeps the sum: from the
    differences, not the values (they agree to more digits than a float holds long before the
    weights settle), and without the part constant across rows (a step sums to 0 only up to
    rounding, which that part would magnify)."""
    return float(step @ (through - through.mean()))


def project_simplex(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection of v onto {w >= 0, sum w = 1} (sort and threshold: Held, Wolfe
    and Crowder 1974; Duchi et al. 2008)."""
    ordered = np.sort(v)[::-1]
    cumulative = np.cumsum(ordered) - 1
    counts = np.arange(1, len(v) + 1)
    support = np.flatnonzero(ordered - cumulative / counts > 0)[-1]
    w: np.ndarray = np.maximum(v - cumulative[support] / (support + 1), 0.0)
    w /= w.sum()  # the sum is 1 up to rounding: make it 1 to the last digit it can
    return w


def _curvature_estimate(K: np.ndarray, rounds: int = 30) -> float:
    """K's largest eigenvalue on the directions that keep the sum (sum v = 0), by power iteration:
    only those move a point of the simplex, and the all-ones direction, often K's far largest
    eigenvalue, would shrink every step. An estimate from below; the solve lengthens it on need."""
    v = K.sum(axis=1)
    if np.ptp(v) <= 1e-12 * max(float(np.abs(v).max()), 1.0):  # equal row sums: any other start
        v = np.arange(len(K), dtype=np.float64)
    estimate = 0.0
    for _ in range(rounds):
        v = v - v.mean()
        norm = float(np.linalg.norm(v))
        if norm == 0:
            break
        v = K @ (v / norm)
        v -= v.mean()
        previous, estimate = estimate, float(np.linalg.norm(v))
        if abs(estimate - previous) <= 1e-3 * estimate:
            break
    return max(estimate, 1e-12)


def _checked(selected: np.ndarray, n: int) -> np.ndarray:
    picks = np.asarray(selected, dtype=np.int64).reshape(-1)
    if len(picks) and (picks.min() < 0 or picks.max() >= n):
        raise UsageError(f"holds a row outside 0..{n - 1}", option="selected")
    if len(np.unique(picks)) != len(picks):
        raise UsageError("lists a row twice", option="selected")
    return picks
