"""Evaluate: is a subset varied and representative, and does it beat random subsets of its size?

Per group: coverage (distance from every image to its nearest selected image: mean and max),
MMD between subset and group (RBF kernel, bandwidth = median pairwise distance), total variation
between the subset's and the group's cluster shares, and the near-duplicate rate inside the
subset (embedding cosine >= 0.95). Each figure is repeated for seeded uniform random subsets of
the same size (mean, std).
Where the groups are split/class folders with a train split and a held-out one (test or val), a
linear probe (logistic regression on the embeddings) trained on the subset is tested there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import pairwise_distances, pairwise_distances_argmin_min
from sklearn.neighbors import NearestNeighbors

from repsample.errors import RepsampleError
from repsample.records import EVALUATION as EVALUATION  # where evaluate writes (cli names it)
from repsample.records import ManifestRow, read_run

logger = logging.getLogger(__name__)

METRICS = ("coverage_mean", "coverage_max", "mmd", "cluster_tv", "duplicate_rate")
LOWER_IS_BETTER = dict.fromkeys(METRICS, True)
DUPLICATE_COSINE = 0.95
"""Two images are near-duplicates when their embeddings' cosine similarity is at least this. On
bench/duplicates.py's real photos (efficientnet-lite0) it holds most planted re-encodes, resizes
and flips (medians 0.98, 0.995, 0.97) and no pair of distinct photos (their highest: 0.94)."""
REFERENCE_ROWS = 2000
"""Above this many images, the median and MMD use a seeded sample of the group of this size."""
HELD_OUT_SPLITS = ("test", "val", "valid", "validation")


@dataclass(frozen=True)
class Reference:
    """One group's embeddings and the constants every subset of it is scored against."""

    X: np.ndarray
    clusters: np.ndarray | None  # cluster label per row, None when the group was not clustered
    scale: float  # median pairwise distance
    rows: np.ndarray  # rows that stand for the group in MMD
    kxx: float  # mean kernel value over those rows

    @classmethod
    def build(cls, X: np.ndarray, clusters: np.ndarray | None = None, seed: int = 0) -> Reference:
        X = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(X), REFERENCE_ROWS, replace=False)) if len(
            X) > REFERENCE_ROWS else np.arange(len(X))
        d = pairwise_distances(X[rows])
        upper = d[np.triu_indices(len(rows), 1)]
        scale = float(np.median(upper)) if len(upper) and np.median(upper) > 0 else 1.0
        if clusters is not None and (clusters < 0).any():
            clusters = None
        return cls(X, clusters, scale, rows, float(_kernel(d, scale).mean()))

    def score(self, subset: np.ndarray) -> dict[str, float | None]:
        """The METRICS of a subset (row numbers into X); lower is better for every one."""
        subset = np.asarray(subset, dtype=np.int64)
        if not len(subset):
            return dict.fromkeys(METRICS)
        Y = self.X[subset]
        _, nearest = pairwise_distances_argmin_min(self.X, Y)
        return {
            "coverage_mean": float(nearest.mean()),
            "coverage_max": float(nearest.max()),
            "mmd": self.mmd(Y),
            "cluster_tv": self.cluster_tv(subset),
            "duplicate_rate": duplicate_rate(Y),
        }

    def mmd(self, Y: np.ndarray) -> float:
        kyy = _kernel(pairwise_distances(Y), self.scale).mean()
        kxy = _kernel(pairwise_distances(self.X[self.rows], Y), self.scale).mean()
        return float(np.sqrt(max(self.kxx + kyy - 2 * kxy, 0.0)))

    def cluster_tv(self, subset: np.ndarray) -> float | None:
        if self.clusters is None:
            return None
        k = int(self.clusters.max()) + 1
        whole = np.bincount(self.clusters, minlength=k) / len(self.clusters)
        part = np.bincount(self.clusters[subset], minlength=k) / len(subset)
        return float(0.5 * np.abs(whole - part).sum())


def _kernel(d: np.ndarray, scale: float) -> np.ndarray:
    return np.asarray(np.exp(-(d**2) / (2 * scale**2)))


def duplicate_rate(Y: np.ndarray, min_cosine: float = DUPLICATE_COSINE) -> float:
    """Share of the subset's images that have another subset image at cosine >= min_cosine."""
    if len(Y) < 2:
        return 0.0
    unit = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
    dist, _ = NearestNeighbors(n_neighbors=2).fit(unit).kneighbors(unit)
    # On unit vectors |a - b|^2 = 2 - 2 cos(a, b).
    return float((dist[:, 1] <= np.sqrt(max(0.0, 2 - 2 * min_cosine)) + 1e-9).mean())


def random_subset(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, size, replace=False)


def random_subsets(n: int, size: int, seeds: int) -> list[np.ndarray]:
    """Seeded uniform random subsets, seeds 0..seeds-1 (the same for every caller)."""
    return [random_subset(n, size, s) for s in range(seeds)]


def summarize(values: Sequence[float | None]) -> dict[str, float | None]:
    real = [v for v in values if v is not None]
    if not real:
        return {"mean": None, "std": None}
    return {"mean": float(np.mean(real)), "std": float(np.std(real))}


def linear_probe(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                 y_test: np.ndarray, seed: int = 0) -> float | None:
    """Accuracy on the test rows of a logistic regression fitted on standardized train rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y_train)) < 2 or not len(y_test):
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, random_state=seed))
    probe.fit(X_train, y_train)
    return float(probe.score(X_test, y_test))


# -- an OUTPUT folder of `repsample select` ---------------------------------------------------


@dataclass(frozen=True)
class GroupData:
    name: str
    X: np.ndarray
    selected: np.ndarray  # row numbers
    clusters: np.ndarray


def evaluate_output(output: str | Path, *, seeds: int = 5, cache: str | Path | None = None
                    ) -> dict[str, Any]:
    """Score the selection in OUTPUT against random subsets; writes OUTPUT/evaluation.json,
    which names the selection it scored (records.Run.selection_id)."""
    from repsample.export import write_atomic
    from repsample.publish import update_output

    if seeds < 1:
        raise RepsampleError(f"--seeds must be at least 1, got {seeds}")
    out = Path(output)
    read_run(out)  # a missing or tampered OUTPUT is one line naming OUTPUT, not the stage

    def score(stage: Path) -> dict[str, Any]:
        # Read under OUTPUT's lock: the selection scored is the one the evaluation lands beside.
        run = read_run(stage)
        groups = load_groups(run.manifest.rows, Path(cache or run.record.cache), run.record.cache_key)
        result: dict[str, Any] = {"scored": run.selection_id, "seeds": seeds,
                                  "duplicate_min_cosine": DUPLICATE_COSINE, "groups": {}, "overall": {}}
        for g in groups:
            result["groups"][g.name] = evaluate_group(g, seeds)
        result["overall"] = overall(result["groups"])
        result["linear_probe"] = probe_splits(groups, seeds)
        write_atomic(stage / EVALUATION, json.dumps(result, indent=2) + "\n")
        return result

    return update_output(out, score)


def load_groups(rows: Sequence[ManifestRow], cache_path: Path, key: str) -> list[GroupData]:
    from repsample.cache import EmbeddingCache

    if not cache_path.is_file():
        raise RepsampleError(f"embedding cache {cache_path} not found; pass --cache with the "
                             "database that `repsample select` used")
    usable = [r for r in rows if r.status in ("selected", "not_selected") and r.hash]
    with EmbeddingCache(cache_path) as db:
        entries = db.get_many([r.hash for r in usable], key)
    by_group: dict[str, list[ManifestRow]] = {}
    for r in usable:
        entry = entries.get(r.hash)
        if entry is None or entry.vector is None:
            raise RepsampleError(f"the cache {cache_path} lacks the embedding of {r.path}; "
                                 "rerun `repsample select` with that cache")
        by_group.setdefault(r.group, []).append(r)
    groups = []
    for name, members in sorted(by_group.items()):
        X = np.stack([entries[r.hash].vector for r in members])  # type: ignore[misc]
        selected = np.flatnonzero([r.status == "selected" for r in members])
        clusters = np.asarray([-1 if r.cluster is None else r.cluster for r in members])
        groups.append(GroupData(name, X, selected, clusters))
    return groups


def evaluate_group(g: GroupData, seeds: int) -> dict[str, Any]:
    ref = Reference.build(g.X, g.clusters)
    mine = ref.score(g.selected)
    chance = [ref.score(s) for s in random_subsets(len(g.X), len(g.selected), seeds)]
    return {
        "images": len(g.X),
        "selected": len(g.selected),
        "selection": mine,
        "random": {m: summarize([c[m] for c in chance]) for m in METRICS},
    }


def overall(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Image-weighted means of the group figures (coverage_max: the worst group)."""
    weights = np.asarray([g["images"] for g in groups.values()], dtype=np.float64)

    def combine(values: list[float | None], metric: str) -> float | None:
        if not values or any(v is None for v in values):
            return None
        real = np.asarray(values, dtype=np.float64)
        return float(real.max() if metric == "coverage_max" else np.average(real, weights=weights))

    out: dict[str, Any] = {"selection": {}, "random": {}}
    for m in METRICS:
        out["selection"][m] = combine([g["selection"][m] for g in groups.values()], m)
        out["random"][m] = combine([g["random"][m]["mean"] for g in groups.values()], m)
    return out


def split_class(name: str) -> tuple[str, str] | None:
    parts = name.split("/", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def probe_splits(groups: Sequence[GroupData], seeds: int) -> dict[str, Any] | None:
    """Train on the train split's subsets, test on every image of a held-out split."""
    by_split: dict[str, dict[str, GroupData]] = {}
    for g in groups:
        sc = split_class(g.name)
        if sc:
            by_split.setdefault(sc[0], {})[sc[1]] = g
    held = next((s for s in HELD_OUT_SPLITS if s in by_split), None)
    if "train" not in by_split or held is None:
        return None
    classes = sorted(set(by_split["train"]) & set(by_split[held]))
    if len(classes) < 2:
        return None
    train = [by_split["train"][c] for c in classes]
    X_test = np.vstack([by_split[held][c].X for c in classes])
    y_test = np.concatenate([np.full(len(by_split[held][c].X), i) for i, c in enumerate(classes)])

    def accuracy(subsets: list[np.ndarray]) -> float | None:
        X = np.vstack([g.X[rows] for g, rows in zip(train, subsets, strict=True)])
        y = np.concatenate([np.full(len(rows), i) for i, rows in enumerate(subsets)])
        return linear_probe(X, y, X_test, y_test)

    mine = accuracy([g.selected for g in train])
    chance = [accuracy([random_subset(len(g.X), len(g.selected), s) for g in train])
              for s in range(seeds)]
    return {"train_split": "train", "test_split": held, "classes": classes,
            "test_images": len(y_test), "selection": mine, "random": summarize(chance)}
