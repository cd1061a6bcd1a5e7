"""Micro-bench: the refinement's time and memory against herding's, in one run.

    python bench/refine_speed.py [--sizes 20000 100000] [--budget 1000] [--dim 1280]

On select_speed.py's synthetic clustered 1280-d vectors (not embeddings of real images), per size:
the whole-group selection step of ``RefineSelector`` (herding, then annealed exchanges on a pool of
at most ``refine.POOL_ROWS`` rows) and of v0.2's ``HerdingSelector`` without quotas, both on the
same clustering (the clustering itself is not timed: choose_k is select_speed.py's subject); their
ratio; the refinement's peak memory above the vectors (tracemalloc, in a second, untimed fit); and the
MMD of each subset to the group under the shared kernel, on a seeded 4,000-row sample.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from select_speed import clustered  # bench/, this script's folder

from repsample.selection.cluster import choose_k
from repsample.selection.kernel import gaussian, length_scale
from repsample.selection.strategies import HerdingSelector, RefineSelector


def mmd(X: np.ndarray, picks: np.ndarray, rows: np.ndarray, scale: float) -> float:
    """MMD between the picks and the sampled rows of X under the shared kernel."""
    whole, part = X[rows], X[picks]
    value = (gaussian(whole, whole, scale).mean() + gaussian(part, part, scale).mean()
             - 2 * gaussian(whole, part, scale).mean())
    return float(np.sqrt(max(value, 0.0)))


def timed(selector: HerdingSelector, X: np.ndarray, clustering: object) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    picks = selector.fit(X, clustering=clustering).selected_indices_
    return time.perf_counter() - t0, picks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--dim", type=int, default=1280)
    args = p.parse_args()
    print("| rows | herding s | refine s | ratio | refine peak MB | herding MMD | refine MMD | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        X = clustered(n, args.dim)
        clustering = choose_k(X)
        herd_s, herded = timed(HerdingSelector(args.budget, allocation="none"), X, clustering)
        refine_s, refined = timed(RefineSelector(args.budget, allocation="none"), X, clustering)
        tracemalloc.start()  # a second fit, traced: tracing slows numpy's allocations
        RefineSelector(args.budget, allocation="none").fit(X, clustering=clustering)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows = np.sort(np.random.default_rng(1).choice(n, min(n, 4000), replace=False))
        scale = length_scale(X)
        m_h, m_r = mmd(X, herded, rows, scale), mmd(X, refined, rows, scale)
        print(f"| {n:,} | {herd_s:.2f} | {refine_s:.2f} | {refine_s / herd_s:.2f}x | {peak:.0f} | "
              f"{m_h:.4f} | {m_r:.4f} | {m_r / m_h:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
