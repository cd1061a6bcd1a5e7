"""Refine: picks whose kernel mean is as close to the group's as exchanges can bring it.

Greedy kernel herding gives a first set; then picks are exchanged against other rows on the exact
MMD^2 under the shared kernel (kernel.py). First annealed passes, coreax's "probabilistic iterative
herding": each pick in turn is taken out and its replacement drawn with probability proportional
to exp(-score / T), the temperature falling cubically to 0, so the search can leave the greedy
set's local minimum. Then deterministic passes take, for each pick, the replacement that lowers
MMD^2 most, until a whole pass changes nothing. The best set seen is kept.

Scores are in units of kernel mass: a replacement's score is 2 / M^2 times the kernel mass the
other picks already put on it less M times the group's mass there, so one temperature suits every
kernel, dimension and budget (M: picks, kept rows included).

Everything works on a pool: every row of the group up to ``POOL_ROWS``, else a seeded uniform
sample of that size (also the sample the group's kernel mean is taken over), topped up with kept
rows and, under cluster quotas, with enough rows of every cluster. Memory is the pool's kernel
matrix, never n x n: 100,000 rows cost what 4,096 do.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from repsample.selection.kernel import gaussian, length_scale

POOL_ROWS = 4096
"""Rows of a group the refinement works on (and takes the group's kernel mean over)."""
POOL_PER_PICK = 3
"""A pool holds at least this many rows per pick, so that large budgets still have a choice."""
POOL_LIMIT = 12_288
"""Largest pool (its float32 kernel matrix: 600 MB); a budget beyond a third of it is herded only."""
ANNEAL_WORK = 100_000_000
"""Annealed passes are as many as fit this many score updates (picks x pool rows per pass), ..."""
ANNEAL_PASSES = (16, 200)
"""... within these bounds: 200 at small budgets (coreax's blobs need them), 24 at 1,000 picks
of a 4,096-row pool (about 1.5 s here)."""
TEMPERATURE = 0.5
"""Starting temperature, in units of kernel mass (see the module's docstring)."""
MAX_DESCENT_PASSES = 50


class PoolProblem:
    """MMD^2 between a set of pool rows and the group, with what exchanges need: the pool's kernel
    matrix K, each row's mean kernel value over the group (``target``) and each row's ``score``,
    the change of MMD^2 (up to a constant) if it joined the set: (2/M^2) its kernel mass from the
    set less (2/M) its target. Kept up to date with one kernel row per change."""

    def __init__(self, K: np.ndarray, target: np.ndarray, fixed: np.ndarray, picks: np.ndarray,
                 labels: np.ndarray | None = None) -> None:
        self.K, self.target, self.labels = K, target, labels
        self.fixed, self.picks = np.asarray(fixed, dtype=np.int64), np.array(picks, dtype=np.int64)
        M = len(self.fixed) + len(self.picks)
        self.weight = 2 / max(M, 1) ** 2  # of one unit of kernel mass in the score
        chosen = np.concatenate([self.fixed, self.picks])
        mass = K[chosen].sum(axis=0, dtype=np.float64) if len(chosen) else np.zeros(len(K))
        self.score = self.weight * mass - (2 / max(M, 1)) * target
        self.blocked = np.zeros(len(K))  # +inf on the rows in the set: none may join twice
        self.blocked[chosen] = np.inf
        # Rows a pick may be exchanged for: its own cluster's under quotas, else every row.
        self.rows_of = ({int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
                        if labels is not None else None)

    def objective(self) -> float:
        """MMD^2 less the group's constant: sum over the set of score / 2 - target / M."""
        chosen = np.concatenate([self.fixed, self.picks])
        M = len(chosen)
        return float(self.score[chosen].sum() / 2 - self.target[chosen].sum() / M)

    def replace(self, i: int, rng: np.random.Generator | None, temperature: float) -> bool:
        """Take pick i out and put back the best replacement (temperature 0) or one drawn with
        probability proportional to exp(-score / T) (T in units of kernel mass: score / weight).
        Returns whether pick i changed.

        Called tens of thousands of times on a few hundred rows: array methods and ufuncs are
        called directly, not through numpy's function wrappers, whose overhead was a fifth of
        the time (the same arithmetic, so the same picks)."""
        a = int(self.picks[i])
        column, blocked = self.K[a], self.blocked
        blocked[a] = 0.0  # a may stay
        rows = None if self.rows_of is None or self.labels is None else self.rows_of[int(self.labels[a])]
        if rows is None:
            score = self.score + blocked
            score -= self.weight * column
        else:
            score = self.score.take(rows)
            score += blocked.take(rows)
            score -= self.weight * column.take(rows)
        if temperature > 0 and rng is not None:
            score -= np.minimum.reduce(score)
            score *= -1 / (self.weight * temperature)
            np.exp(score, out=score)  # rows in the set: exp(-inf) = 0
            cumulative = score.cumsum()
            pick = min(int(cumulative.searchsorted(rng.random() * cumulative[-1], side="right")),
                       len(score) - 1)
        else:
            local_a = a if rows is None else int(rows.searchsorted(a))
            pick = int(score.argmin())
            if score[pick] >= score[local_a] - 1e-15 * self.weight:
                pick = local_a
        b = pick if rows is None else int(rows[pick])
        if b == a:
            blocked[a] = np.inf
            return False
        self.score += self.weight * (self.K[b] - column)
        blocked[b] = np.inf
        self.picks[i] = b
        return True


def anneal(problem: PoolProblem, rng: np.random.Generator, passes: int | None = None,
           temperature: float | None = None) -> None:
    """Annealed exchange passes, then deterministic ones to a local minimum; the best set seen is
    left in ``problem``."""
    if passes is None:
        work = len(problem.picks) * len(problem.K)
        passes = int(np.clip(ANNEAL_WORK // max(work, 1), *ANNEAL_PASSES))
    temperature = TEMPERATURE if temperature is None else temperature
    best, best_value = problem.picks.copy(), problem.objective()
    for p in range(passes):
        heat = temperature * (1 - p / passes) ** 3
        for i in rng.permutation(len(problem.picks)):
            problem.replace(int(i), rng, heat)
        value = problem.objective()
        if value < best_value:
            best, best_value = problem.picks.copy(), value
    _restore(problem, best)
    for _ in range(MAX_DESCENT_PASSES):
        changed = [problem.replace(int(i), None, 0.0) for i in range(len(problem.picks))]
        if not any(changed):
            break


def _restore(problem: PoolProblem, picks: np.ndarray) -> None:
    """Set the picks to ``picks``, recomputing the kernel mass from them (no drift)."""
    problem.__init__(problem.K, problem.target, problem.fixed, picks, problem.labels)  # type: ignore[misc]


def herd(problem: PoolProblem, quota: int, room: np.ndarray | None = None) -> np.ndarray:
    """Greedy kernel herding on the pool: ``quota`` rows added to the problem's fixed rows, each the
    one lowering MMD^2 most; with ``room`` (picks each cluster may take), full clusters are passed
    over. Returns the picks in order."""
    K, target, labels = problem.K, problem.target, problem.labels
    fixed = np.asarray(problem.fixed)
    mass = K[fixed].sum(axis=0, dtype=np.float64) if len(fixed) else np.zeros(len(K))
    blocked = problem.blocked.copy()
    left = None if room is None else np.array(room, dtype=np.int64)
    order: list[int] = []
    for t in range(quota):
        score = mass / (len(fixed) + t + 1) - target + blocked  # herding: mean mass less target
        if left is not None and labels is not None:
            score[left[labels] <= 0] = np.inf
        j = int(np.argmin(score))
        if not np.isfinite(score[j]):
            break
        order.append(j)
        mass += K[j]
        blocked[j] = np.inf
        if left is not None and labels is not None:
            left[labels[j]] -= 1
    return np.asarray(order, dtype=np.int64)


def pool_rows(n: int, kept: np.ndarray, need: np.ndarray | None, labels: np.ndarray | None,
              size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The pool (sorted rows) and the uniform sample inside it that stands for the group.

    ``need``: per cluster, rows the pool must hold of it (quotas); topped up from the cluster's
    rows outside the sample, seeded.
    """
    sample = np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))
    extra = [kept]
    if need is not None and labels is not None and n > size:
        in_sample = np.zeros(n, dtype=bool)
        in_sample[sample] = True
        for c in np.flatnonzero(need):
            have = int((labels[sample] == c).sum())
            outside = np.flatnonzero((labels == c) & ~in_sample)
            if have < need[c] and len(outside):
                extra.append(rng.choice(outside, min(len(outside), need[c] - have), replace=False))
    pool = np.union1d(sample, np.concatenate(extra))
    return pool, np.searchsorted(pool, sample)


def refine_select(X: np.ndarray, kept: np.ndarray, budget: int, seed: int,
                  labels: np.ndarray | None = None, quotas: np.ndarray | None = None) -> np.ndarray:
    """``budget`` rows of X besides ``kept``, best first: herding, then annealed exchanges.

    With ``labels`` and ``quotas`` (new picks per cluster), picks keep to the quotas: each pick is
    only exchanged within its cluster. Returns row numbers of X in herding's order of the final set
    (rows the refinement brought in after the greedy ones).
    """
    n = len(X)
    rng = np.random.default_rng(seed)
    budget = min(budget, n - len(kept))
    if budget <= 0:
        return np.empty(0, dtype=np.int64)
    need = None if quotas is None or labels is None else (
        POOL_PER_PICK * quotas + np.bincount(labels[kept], minlength=len(quotas)))
    size = min(POOL_LIMIT, max(POOL_ROWS, POOL_PER_PICK * (budget + len(kept))))
    pool, sample = pool_rows(n, kept, need, labels, size, rng)
    X = np.asarray(X, dtype=np.float32)
    scale = length_scale(X, seed)
    with threadpool_limits(limits=None):
        K = gaussian(X[pool], X[pool], scale)
    target = K[:, sample].mean(axis=1, dtype=np.float64)
    pool_labels = None if quotas is None or labels is None else labels[pool]
    problem = PoolProblem(K, target, np.searchsorted(pool, kept), np.empty(0, dtype=np.int64),
                          pool_labels)
    greedy = herd(problem, budget, quotas)
    problem = PoolProblem(K, target, problem.fixed, greedy, pool_labels)
    if budget + len(kept) <= POOL_LIMIT // POOL_PER_PICK:
        with threadpool_limits(limits=1, user_api="blas"):
            anneal(problem, rng)
    final = set(problem.picks.tolist())
    # Best first: the greedy picks that stayed, in herding's order, then those exchanged in.
    order = [p for p in greedy.tolist() if p in final]
    order += sorted(final - set(order), key=lambda p: -target[p])
    return np.asarray(pool[order], dtype=np.int64)
