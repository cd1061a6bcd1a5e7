"""Coresets side by side: repsample's selectors, coreax (GCHQ) and goodpoints (kernel thinning and
Compress++ by the methods' authors), on the same points, in one run.

Part ``blobs``: coreax's own benchmark (``benchmark/blobs_benchmark.py``, ``coreax/benchmark_util.py``
in github.com/gchq/coreax), its protocol exactly: ``make_blobs(n_samples=1024, n_features=2,
centers=10, random_state=seed)`` for seeds 42, 45, 46, 47, 48; coreset sizes 25, 50, 100, 200; a
squared-exponential kernel ``exp(-|x - y|^2 / (2 l^2))`` with ``l`` = coreax's ``median_heuristic``
(sqrt(median squared distance / 2)) over 1,000 rows drawn with ``numpy.random.default_rng(45)``;
unweighted MMD ``sqrt(mean K_XX + mean K_SS - 2 mean K_XS)``, diagonals included, computed here in
numpy (float64) and checked once against coreax's ``MMD(kernel).compute``; mean over the seeds.
coreax's solvers are built as its benchmark builds them, and its published means are printed
beside what they give here.

Part ``real``: the embeddings of bench/quality.py (Fashion-MNIST classes with a planted inverted
image, and the photo crops of bench/photo_modes.py), embedded through ``repsample.embed_images``
with the cache under --root. For each class folder of the train split and each budget: MMD
(repsample.evaluate's measure) and MMD under the kernel rule above, modes held, the accuracy of
quality.py's linear probe on the held-out split, seconds.

Needs the bench extra (``pip install -e '.[bench]'``: coreax, which brings JAX for the CPU, and
goodpoints); neither is a dependency of repsample itself.

    python bench/coresets.py --json coresets.json                       # both parts (docs)
    python bench/coresets.py --parts blobs --seeds 42 --sizes 25,50     # a quick look
    python bench/coresets.py --parts real --root /tmp/qb --train-per-class 200 --budgets 20
    python bench/coresets.py --strategies refine,cover                  # more registered strategies
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BLOB_POINTS = 1024
BLOB_SEEDS = (42, 45, 46, 47, 48)
BLOB_SIZES = (25, 50, 100, 200)
SCALE_ROWS, SCALE_SEED = 1000, 45  # coreax's setup_kernel: the median over 1,000 rows, rng(45)
KEY_SEED = 45  # coreax's setup_solvers: jax.random.PRNGKey(random_seed=45) for every data seed
HERDING_V02 = "repsample herding (v0.2)"
RANDOM = "random"
COMPRESSPP = "goodpoints Compress++ (a seeded subset of its sqrt(n') points)"

# coreax's blobs_benchmark_results.json (commit 70dc93e8, 2025-03-19): unweighted MMD, mean of 5 seeds.
PUBLISHED = {
    "RandomSample": (0.11142, 0.10492, 0.055019, 0.041521),
    "KernelHerding": (0.024273, 0.014011, 0.0079091, 0.0042586),
    "KernelThinning": (0.01488, 0.0063038, 0.0026851, 0.0015182),
    "CompressPlusPlus": (0.013212, 0.0076162, 0.0029357, 0.0014102),
    "IterativeHerding": (0.0070513, 0.0037084, 0.0022563, 0.0013822),
    "ProbabilisticIterativeHerding": (0.021128, 0.015108, 0.0097102, 0.0063578),
    "CubicProbIterativeHerding": (0.0045428, 0.0017335, 0.00080452, 0.00058211),
}
# Our label for each coreax solver of their benchmark, and its name there.
COREAX = {
    "coreax RandomSample": "RandomSample",
    "coreax kernel herding": "KernelHerding",
    "coreax kernel thinning": "KernelThinning",
    "coreax Compress++": "CompressPlusPlus",
    "coreax iterative herding": "IterativeHerding",
    "coreax probabilistic iterative herding": "ProbabilisticIterativeHerding",
    "coreax cubic probabilistic iterative herding": "CubicProbIterativeHerding",
}
REAL_COREAX = ("coreax kernel herding", "coreax cubic probabilistic iterative herding")


# -- the kernel and the metric --------------------------------------------------------------------


def coreax_length_scale(X: np.ndarray) -> float:
    """coreax's setup_kernel: median_heuristic (sqrt(median squared distance / 2)) over 1,000 rows."""
    import jax.numpy as jnp
    from coreax.kernels import median_heuristic

    rows = np.random.default_rng(SCALE_SEED).choice(len(X), min(len(X), SCALE_ROWS), replace=False)
    return float(median_heuristic(jnp.asarray(X[rows])))


def gaussian(A: np.ndarray, B: np.ndarray, scale: float) -> np.ndarray:
    """exp(-|a - b|^2 / (2 scale^2)) for every row pair, float64."""
    from scipy.spatial.distance import cdist

    return np.asarray(np.exp(-cdist(A, B, "sqeuclidean") / (2 * scale**2)))


@dataclass(frozen=True)
class Problem:
    """Points to reduce, the kernel every method and the metric share, and the seeds."""

    X: np.ndarray  # float64 rows
    scale: float  # the length scale by coreax's rule
    kxx: float  # mean K_XX, diagonal included
    seed: int  # the data's seed: goodpoints' seed and every seeded subset
    delta: float  # coreax's kernel thinning delta (their blobs benchmark passes the data seed)

    @classmethod
    def build(cls, X: np.ndarray, seed: int, delta: float = 0.5) -> Problem:
        X = np.asarray(X, dtype=np.float64)
        scale = coreax_length_scale(X)
        return cls(X, scale, float(gaussian(X, X, scale).mean()), seed, delta)

    def mmd(self, rows: np.ndarray) -> float:
        """Unweighted MMD of X[rows] (repeats counted as coreax counts them) to X."""
        S = self.X[rows]
        kss, kxs = gaussian(S, S, self.scale).mean(), gaussian(self.X, S, self.scale).mean()
        return float(np.sqrt(max(self.kxx + kss - 2 * kxs, 0.0)))

    def kernel_row_means(self, rows: np.ndarray) -> np.ndarray:
        """mean_j k(X[i], X_j) over all of X, for each i in rows (goodpoints' meanK)."""
        return gaussian(self.X[rows], self.X, self.scale).mean(axis=1)


# -- the methods: each (problem, size) -> rows, or None where it cannot give that size -----------

Run = Callable[[Problem, int], "np.ndarray | None"]


def coreax_solvers(p: Problem, size: int) -> dict[str, Callable[[], Any]]:
    """coreax's solvers as benchmark/blobs_benchmark.py's setup_solvers builds them."""
    import jax
    import jax.numpy as jnp
    from coreax.benchmark_util import IterativeKernelHerding
    from coreax.kernels import SquaredExponentialKernel
    from coreax.solvers import CompressPlusPlus, KernelHerding, KernelThinning, RandomSample

    key, kernel = jax.random.PRNGKey(KEY_SEED), SquaredExponentialKernel(length_scale=p.scale)

    def thinning() -> dict[str, Any]:  # only when asked: its output scale underflows in 1280-d
        return {"random_key": key, "delta": p.delta, "sqrt_kernel": kernel.get_sqrt_kernel(dim=p.X.shape[1])}

    def iterative(probabilistic: bool, iterations: int, schedule: Any = None) -> Any:
        return IterativeKernelHerding(coreset_size=size, kernel=kernel, probabilistic=probabilistic,
                                      temperature=0.001, random_key=key, num_iterations=iterations,
                                      t_schedule=schedule)

    return {
        "RandomSample": lambda: RandomSample(coreset_size=size, random_key=key),
        "KernelHerding": lambda: KernelHerding(coreset_size=size, kernel=kernel),
        "KernelThinning": lambda: KernelThinning(coreset_size=size, kernel=kernel, **thinning()),
        "CompressPlusPlus": lambda: CompressPlusPlus(coreset_size=size, kernel=kernel, g=4, **thinning()),
        "IterativeHerding": lambda: iterative(False, 5),
        "ProbabilisticIterativeHerding": lambda: iterative(True, 5),
        "CubicProbIterativeHerding": lambda: iterative(True, 10, 1 / jnp.linspace(10, 100, 10) ** 3),
    }


def coreax_run(solver_name: str) -> Run:
    def run(p: Problem, size: int) -> np.ndarray:
        import jax
        import jax.numpy as jnp
        from coreax import Data

        coreset, _ = coreax_solvers(p, size)[solver_name]().reduce(Data(jnp.asarray(p.X)))
        return np.asarray(jax.block_until_ready(coreset.unweighted_indices))
    return run


def goodpoints_kt(p: Problem, size: int) -> np.ndarray:
    """Kernel thinning returns n / 2^m points: thin a seeded subset of size * 2^m rows (coreax's
    KernelThinning clips the data to that many rows the same way) with m as large as n allows; the
    swap step measures candidates against all n rows (meanK), as coreax's does."""
    from goodpoints import kt

    m = math.floor(math.log2(len(p.X) / size))
    rows = np.sort(np.random.default_rng(p.seed).choice(len(p.X), size * 2**m, replace=False))
    split_scale = p.scale / math.sqrt(2)  # the square-root kernel of a Gaussian (KT, Table 1)

    def target(y: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.exp(-((X - y) ** 2).sum(-1) / (2 * p.scale**2))

    def split(y: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.exp(-((X - y) ** 2).sum(-1) / (2 * split_scale**2))

    picked = kt.thin(p.X[rows], m, split, target, delta=0.5, seed=p.seed, store_K=True,
                     meanK=p.kernel_row_means(rows), unique=True)
    return rows[np.asarray(picked)]


def compresspp_own(p: Problem) -> np.ndarray:
    """goodpoints' Compress++ (g = 4, as coreax's benchmark): sqrt(n') rows, n' the largest power
    of 4 up to n."""
    from goodpoints.compress import compresspp_kt

    return np.asarray(compresspp_kt(p.X, b"gaussian", k_params=np.array([2 * p.scale**2]), g=4,
                                    seed=p.seed))


def goodpoints_compresspp(p: Problem, size: int) -> np.ndarray | None:
    """Compress++ at its own size sqrt(n'); a smaller size is a seeded subset of it, a larger one
    it cannot give (None)."""
    own = compresspp_own(p)
    if len(own) < size:
        return None
    return np.sort(np.random.default_rng(p.seed).choice(own, size, replace=False))


def pipeline_selector(config: Any, size: int) -> Any:
    """The selector exactly as repsample.pipeline._fit_group builds it from a SelectConfig."""
    from repsample.selection.strategies import STRATEGIES

    return STRATEGIES.get(config.strategy)(
        size, allocation=config.allocation, k_min=config.k_min, k_max=config.k_max,
        silhouette_sample=config.silhouette_sample, random_state=config.seed,
        **config.strategy_params)


def repsample_run(strategy: str | None) -> Run:
    """The pipeline's selector from SelectConfig's defaults (another strategy where one is named)."""
    def run(p: Problem, size: int) -> np.ndarray:
        from repsample.config import SelectConfig

        config = SelectConfig() if strategy is None else dataclasses.replace(SelectConfig(),
                                                                             strategy=strategy)
        return np.asarray(pipeline_selector(config, size).fit(p.X).selected_indices_)
    return run


def herding_v02(p: Problem, size: int) -> np.ndarray:
    from repsample.selection.strategies import HerdingSelector

    return np.asarray(HerdingSelector(size, allocation="proportional", random_state=42)
                      .fit(p.X).selected_indices_)


def default_label() -> str:
    from repsample.config import SelectConfig

    c = SelectConfig()
    params = "".join(f", {k}={v}" for k, v in sorted(c.strategy_params.items()))
    return f"repsample default ({c.strategy}, {c.allocation}{params})"


def common_methods(strategies: Sequence[str]) -> dict[str, Run]:
    """goodpoints' and repsample's methods (both parts have them all)."""
    from repsample.selection.strategies import STRATEGIES

    for name in strategies:
        STRATEGIES.get(name)  # an unknown name fails here, naming the registered ones
    return {"goodpoints kernel thinning": goodpoints_kt,
            COMPRESSPP: goodpoints_compresspp,
            HERDING_V02: herding_v02, default_label(): repsample_run(None),
            **{f"repsample {name}": repsample_run(name) for name in strategies}}


@dataclass(frozen=True)
class Pick:
    rows: np.ndarray
    seconds: float


def timed(run: Run, p: Problem, size: int) -> Pick | None:
    t0 = time.perf_counter()
    rows = run(p, size)
    seconds = time.perf_counter() - t0
    return None if rows is None else Pick(np.asarray(rows, dtype=np.int64), seconds)


# -- part 1: coreax's blobs benchmark -------------------------------------------------------------


def blobs_problem(seed: int) -> Problem:
    from sklearn.datasets import make_blobs

    X, *_ = make_blobs(n_samples=BLOB_POINTS, n_features=2, centers=10, random_state=seed)
    # Their main() calls setup_solvers(size, kernel, stein_kernel, seed): the seed lands in the
    # delta parameter (and the key stays PRNGKey(45)). Kept as they ran it.
    return Problem.build(X, seed, delta=float(seed))


def check_metric(p: Problem, size: int) -> dict[str, float]:
    """Our numpy MMD against coreax's MMD(kernel).compute on coreax's herding coreset, in float64
    (JAX's x64 mode) and as coreax computes it by default (float32)."""
    import jax
    import jax.numpy as jnp
    from coreax import Data
    from coreax.kernels import SquaredExponentialKernel
    from coreax.metrics import MMD

    rows = coreax_run("KernelHerding")(p, size)
    ours = p.mmd(rows)
    gaps = {}
    for name, x64 in (("float64", True), ("float32", False)):
        with jax.enable_x64(x64):
            kernel = SquaredExponentialKernel(length_scale=jnp.asarray(p.scale))
            theirs = MMD(kernel=kernel).compute(Data(jnp.asarray(p.X)), Data(jnp.asarray(p.X[rows])))
            gaps[name] = abs(float(theirs) - ours)
    if gaps["float64"] > 1e-6:
        raise SystemExit(f"our MMD {ours} differs from coreax's by {gaps['float64']:.2e} in float64")
    return {"seed": p.seed, "size": size, "mmd": ours, **{f"gap_{k}": v for k, v in gaps.items()}}


def run_blobs(args: argparse.Namespace) -> dict[str, Any]:
    methods = {label: coreax_run(name) for label, name in COREAX.items()}
    methods.update(common_methods(args.strategies))
    records, own_size = [], []
    check = None
    for seed in args.seeds:
        t0 = time.perf_counter()
        p = blobs_problem(seed)
        check = check or check_metric(p, args.sizes[0])
        for size in args.sizes:
            for label, run in methods.items():
                pick = timed(run, p, size)
                records.append({"seed": seed, "size": size, "method": label,
                                "mmd": None if pick is None else p.mmd(pick.rows),
                                "seconds": None if pick is None else pick.seconds,
                                "distinct": None if pick is None else len(np.unique(pick.rows))})
        own = compresspp_own(p)
        own_size.append({"seed": seed, "size": len(own), "mmd": p.mmd(own)})
        log(f"blobs seed {seed}: {time.perf_counter() - t0:.0f}s")
    return {"records": records, "check": check, "compresspp_own_size": own_size,
            "published": PUBLISHED}


# -- part 2: real embeddings (bench/quality.py's data sets) ---------------------------------------


def real_sets(args: argparse.Namespace) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """quality.py's data sets, written and embedded as it does: (dataset, train X, test X)."""
    import quality  # bench/, this script's folder

    # A tree of its own per size, beside quality.py's: its writer adds to a tree written for another
    # size instead of replacing it. The embedding cache (by content) is --root's, shared.
    trees = args.root / f"coresets-train{args.train_per_class}"
    qargs = quality.parse_args(["--root", str(trees), "--train-per-class", str(args.train_per_class),
                                "--device", args.device])
    sets = []
    for name in args.datasets:
        ds = quality.DATASETS[name](qargs)
        X, X_test, _ = quality.embed_dataset(ds, qargs, args.root / "embeddings.sqlite")
        log(f"{name}: {len(ds.train)} train, {len(ds.test)} test images, {ds.n_modes} modes")
        sets.append((ds, X, X_test))
    return sets


def random_run(draw: int) -> Run:
    def run(p: Problem, size: int) -> np.ndarray:
        from repsample.evaluate import random_subset

        return random_subset(len(p.X), size, draw)
    return run


def real_methods(args: argparse.Namespace) -> dict[str, list[Run]]:
    """Each method's runs: random's seeded draws, one run of every other."""
    methods: dict[str, list[Run]] = {RANDOM: [random_run(d) for d in range(args.random_draws)]}
    methods.update({label: [coreax_run(COREAX[label])] for label in REAL_COREAX})
    methods.update({label: [run] for label, run in common_methods(args.strategies).items()})
    return methods


@dataclass(frozen=True)
class ClassData:
    problem: Problem
    reference: Any  # repsample.evaluate.Reference of the class
    modes: np.ndarray  # a mode id per row, -1 for none
    label: int


def class_data(ds: Any, X: np.ndarray) -> list[ClassData]:
    from repsample.evaluate import Reference

    out = []
    for c in np.unique(ds.y):
        Xc = X[ds.y == c]
        out.append(ClassData(Problem.build(Xc, seed=0), Reference.build(Xc), ds.modes[ds.y == c], int(c)))
    return out


def score_run(classes: list[ClassData], picks: list[Pick | None], X_test: np.ndarray,
              y_test: np.ndarray) -> dict[str, Any] | None:
    """One method's figures at one budget: per-class MMDs averaged, modes summed over classes, the
    probe on the union of the class subsets; None where a class got no pick."""
    from repsample.evaluate import linear_probe

    if any(pick is None for pick in picks):
        return None
    done = [(c, pick) for c, pick in zip(classes, picks, strict=True) if pick is not None]
    held = [c.modes[pick.rows] for c, pick in done]
    X_sub = np.vstack([c.problem.X[pick.rows] for c, pick in done])
    y_sub = np.concatenate([np.full(len(pick.rows), c.label) for c, pick in done])
    return {"mmd": float(np.mean([c.reference.score(pick.rows)["mmd"] for c, pick in done])),
            "mmd_coreax_rule": float(np.mean([c.problem.mmd(pick.rows) for c, pick in done])),
            "modes": int(sum(len(np.unique(h[h >= 0])) for h in held)),
            "accuracy": linear_probe(X_sub, y_sub, X_test, y_test),
            "seconds": float(sum(pick.seconds for _, pick in done))}


def run_real(args: argparse.Namespace) -> list[dict[str, Any]]:
    methods = real_methods(args)
    records = []
    for ds, X, X_test in real_sets(args):
        classes = class_data(ds, X)
        for budget in args.budgets:
            t0 = time.perf_counter()
            for label, runs in methods.items():
                for draw, run in enumerate(runs):
                    picks = [timed(run, c.problem, budget) for c in classes]
                    scores = score_run(classes, picks, X_test, ds.y_test)
                    records.append({"dataset": ds.name, "budget": budget, "method": label,
                                    "draw": draw, "n_modes": ds.n_modes, "scores": scores})
            log(f"{ds.name}, {budget} per class: {time.perf_counter() - t0:.0f}s")
    return records


# -- tables ---------------------------------------------------------------------------------------


def mean_of(values: Iterable[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return float(np.mean(real)) if real else None


def ratio(value: float | None, base: float | None) -> str:
    return "" if value is None or not base else f" ({value / base:.2f}x)"


def blobs_tables(blobs: dict[str, Any], sizes: Sequence[int]) -> str:
    records = blobs["records"]
    labels = list(dict.fromkeys(r["method"] for r in records))
    cell = {(m, s): [r for r in records if (r["method"], r["size"]) == (m, s)] for m in labels
            for s in sizes}
    mmd = {k: mean_of(r["mmd"] for r in rs) for k, rs in cell.items()}
    head = "| method | " + " | ".join(str(s) for s in sizes) + " |"
    rule = "|---|" + "---:|" * len(sizes)
    lines = ["", "### coreax's blobs benchmark: unweighted MMD, mean over seeds "
             "(x: against coreax RandomSample in this run)", "", head, rule]
    for label in labels:
        cells = [na(mmd[label, s]) + ratio(mmd[label, s], mmd["coreax RandomSample", s])
                 + shortfall(cell[label, s], s) for s in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if label in COREAX:
            published = [PUBLISHED[COREAX[label]][BLOB_SIZES.index(s)] if s in BLOB_SIZES else None
                         for s in sizes]
            lines.append("| &nbsp;&nbsp;published (coreax's results file) | "
                         + " | ".join(na(v) for v in published) + " |")
    lines += ["", "### Seconds per coreset: median over seeds (first seed's, JIT compile included)",
              "", head, rule]
    for label in labels:
        cells = []
        for s in sizes:
            times = [r["seconds"] for r in cell[label, s] if r["seconds"] is not None]
            cells.append(f"{np.median(times):.2f} ({times[0]:.2f})" if times else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shortfall(records: list[dict[str, Any]], size: int) -> str:
    """A mark where a coreset held fewer distinct points than its size (repeats)."""
    fewest = min((r["distinct"] for r in records if r["distinct"] is not None), default=size)
    return f" [{fewest} distinct]" if fewest < size else ""


def na(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def real_tables(records: list[dict[str, Any]]) -> str:
    lines = []
    for name in dict.fromkeys(r["dataset"] for r in records):
        for budget in dict.fromkeys(r["budget"] for r in records if r["dataset"] == name):
            mine = [r for r in records if (r["dataset"], r["budget"]) == (name, budget)]
            lines += ["", f"### {name}, {budget} per class (modes of {mine[0]['n_modes']}; "
                      f"random: mean of {sum(r['method'] == RANDOM for r in mine)} draws)", "",
                      "| method | MMD | x random | MMD, coreax rule | x random | modes held | "
                      "probe acc % | seconds |", "|---|" + "---:|" * 7]
            rows = {m: [r["scores"] for r in mine if r["method"] == m] for m in
                    dict.fromkeys(r["method"] for r in mine)}
            base = {k: mean_of(s[k] for s in rows[RANDOM] if s) for k in ("mmd", "mmd_coreax_rule")}
            for method, scores in rows.items():
                lines.append(real_row(method, scores, base))
    return "\n".join(lines)


def real_row(method: str, scores: list[dict[str, Any] | None], base: dict[str, float | None]) -> str:
    if any(s is None for s in scores):
        return f"| {method} | - | | - | | - | - | - (a size it cannot give) |"
    real = [s for s in scores if s is not None]
    f = {k: mean_of(s[k] for s in real) for k in real[0]}
    acc = None if f["accuracy"] is None else 100 * f["accuracy"]
    x_mmd, x_rule = (ratio(f[k], base[k]).strip(" ()") for k in ("mmd", "mmd_coreax_rule"))
    return (f"| {method} | {na(f['mmd'])} | {x_mmd} | {na(f['mmd_coreax_rule'])} | {x_rule} | "
            f"{na(f['modes'], 1)} | {na(acc, 1)} | {na(f['seconds'], 2)} |")


def compresspp_note(blobs: dict[str, Any]) -> str:
    own = blobs["compresspp_own_size"]
    return (f"\ngoodpoints Compress++ returns sqrt(n') = {own[0]['size']} points here; at that size "
            f"its MMD is {np.mean([o['mmd'] for o in own]):.4f} (mean over seeds). Smaller sizes "
            "are a seeded subset of those, larger ones '-'. Metric check: "
            + ", ".join(f"{k} {v:.2g}" for k, v in blobs["check"].items()))


# -- the run --------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    here = Path(__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "repsample_commit": commit,
            **{name: version(name) for name in ("coreax", "goodpoints", "jax", "scikit-learn")}}


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def names(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", type=names, default=["blobs", "real"], help="comma list of blobs, real")
    p.add_argument("--seeds", type=ints, default=list(BLOB_SEEDS), help="blobs' data seeds")
    p.add_argument("--sizes", type=ints, default=list(BLOB_SIZES), help="blobs' coreset sizes")
    p.add_argument("--budgets", type=ints, default=[20, 40, 80], help="real data's, per class")
    p.add_argument("--datasets", type=names, default=["fashion", "photos"])
    p.add_argument("--train-per-class", type=int, default=2000, help="Fashion-MNIST's train images")
    p.add_argument("--random-draws", type=int, default=5, help="random's seeded draws on real data")
    p.add_argument("--strategies", type=names, default=[],
                   help="more registered repsample strategies, by name (e.g. refine,cover)")
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "repsample-bench",
                   help="data sets and the embedding cache (bench/quality.py's default)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = p.parse_args(argv)
    if unknown := sorted(set(args.parts) - {"blobs", "real"}):
        p.error(f"unknown part {', '.join(unknown)} (known: blobs, real)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:]}
    log(json.dumps(results["machine"]))
    tables = []
    if "blobs" in args.parts:
        results["blobs"] = run_blobs(args)
        tables += [blobs_tables(results["blobs"], args.sizes), compresspp_note(results["blobs"])]
    if "real" in args.parts:
        results["real"] = run_real(args)
        tables.append(real_tables(results["real"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("\n".join(tables))


if __name__ == "__main__":
    main()
