"""Evaluate: is a subset varied and representative, and does it beat random subsets of its size?

Per group: coverage (distance from every image to its nearest selected image: mean and max),
MMD between subset and group (RBF kernel, bandwidth = median pairwise distance), the same MMD
with the subset weighted by the manifest's ``weight`` column (none for a manifest without it),
total variation between the subset's and the group's cluster shares, and the near-duplicate
rate inside the subset (embedding cosine >= 0.95). Each figure is repeated for seeded uniform
random subsets of the same size (mean, std), drawn from the images the selector could pick (its
eligible images, those the manifest gives no ``reason``: not a duplicate dedup set aside, a leak
--drop-leaks dropped, nor an outlier --drop-outliers dropped), so chance gets the same choice.
Coverage and MMD measure against every valid image of the group; cluster shares are those of the
eligible images, the only ones clustered. A random subset's weighted MMD weighs it as select
weighs its picks (its own MMD-optimal weights among the eligible images,
repsample.selection.weights): the selection's weights meet chance given the same help, not
uniform weights, which would flatter them.
Where the groups are split/class folders with a train split and a held-out one (named as
hygiene.leaks reads split names), a linear probe (logistic regression on the embeddings) trained on
the subset is tested there.
Where the user knows each image's visual mode (a column of a CSV file, or a pattern in its path:
``ModeLabels``), the modes a group's subset holds are counted against random subsets too.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from sklearn.metrics import pairwise_distances

from repsample.embedding.neighbours import knn, nearest_of
from repsample.errors import RepsampleError, UsageError, mention
from repsample.hygiene.leaks import held_out_split, is_train_split, split_of, train_split
from repsample.output.layout import EVALUATION as EVALUATION  # where evaluate writes (cli names it)
from repsample.output.metrics import DUPLICATE_COSINE, MODES, PROBE, SUBSET_FIGURES, WEIGHTED_MMD
from repsample.output.metrics import METRICS as CATALOGUE
from repsample.output.records import ManifestRow, Run, read_run
from repsample.params import Integer, validate
from repsample.selection.weights import Weigher

logger = logging.getLogger(__name__)

METRICS = SUBSET_FIGURES  # the figures of every subset, named in output.metrics' catalogue
LOWER_IS_BETTER = {m: CATALOGUE[m].lower_is_better for m in METRICS}
REFERENCE_ROWS = 2000
"""Above this many images, the median and MMD use a seeded sample of the group of this size."""
Scores: TypeAlias = dict[str, float | None]  # metric -> value


@dataclass(frozen=True)
class Reference:
    """One group's embeddings and the constants every subset of it is scored against."""

    X: np.ndarray
    clusters: np.ndarray | None  # cluster label per row, -1 for none; None: no row was clustered
    scale: float  # median pairwise distance
    rows: np.ndarray  # rows that stand for the group in MMD
    kxx: float  # mean kernel value over those rows

    @classmethod
    def build(cls, X: np.ndarray, clusters: np.ndarray | None = None, seed: int = 0) -> Reference:
        """clusters: a label per row of X, -1 where a row had none (dedup set it aside)."""
        X = np.asarray(X, dtype=np.float64)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(X), REFERENCE_ROWS, replace=False)) if len(
            X) > REFERENCE_ROWS else np.arange(len(X))
        d = pairwise_distances(X[rows])
        upper = d[np.triu_indices(len(rows), 1)]
        scale = float(np.median(upper)) if len(upper) and np.median(upper) > 0 else 1.0
        if clusters is not None and not (np.asarray(clusters) >= 0).any():
            clusters = None
        return cls(X, clusters, scale, rows, float(_kernel(d, scale).mean()))

    def score(self, subset: np.ndarray, weights: np.ndarray | None = None) -> Scores:
        """The METRICS of a subset (row numbers into X); lower is better for every one. weights:
        the subset's, in its order, summing to 1; None gives no weighted MMD."""
        subset = np.asarray(subset, dtype=np.int64)
        if not len(subset):
            return dict.fromkeys(METRICS)
        Y = self.X[subset]
        _, closest = nearest_of(self.X, Y)
        # Measured again as a difference: the dot-product formula left a selected image ~1e-8 from
        # itself on some BLAS kernels (AVX2); this way a subset's own images are exactly 0 away.
        nearest = np.linalg.norm(self.X - Y[closest[:, 0]], axis=1)
        return {
            "coverage_mean": float(nearest.mean()),
            "coverage_max": float(nearest.max()),
            "mmd": self.mmd(Y),
            WEIGHTED_MMD: None if weights is None else self.mmd(Y, weights),
            "cluster_tv": self.cluster_tv(subset),
            "duplicate_rate": duplicate_rate(Y),
        }

    def mmd(self, Y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Between the group and Y, its rows weighted (uniform where weights is None)."""
        w = np.full(len(Y), 1 / len(Y)) if weights is None else np.asarray(weights, dtype=np.float64)
        kyy = w @ _kernel(pairwise_distances(Y), self.scale) @ w
        kxy = _kernel(pairwise_distances(self.X[self.rows], Y), self.scale).mean(axis=0) @ w
        return float(np.sqrt(max(self.kxx + kyy - 2 * kxy, 0.0)))

    def cluster_tv(self, subset: np.ndarray) -> float | None:
        """Between the cluster shares of the subset's and the group's rows that have a cluster."""
        if self.clusters is None:
            return None
        k = int(self.clusters.max()) + 1
        whole, part = self.clusters[self.clusters >= 0], self.clusters[subset]
        part = part[part >= 0]
        if not len(part):
            return None
        gap = np.bincount(whole, minlength=k) / len(whole) - np.bincount(part, minlength=k) / len(part)
        return float(0.5 * np.abs(gap).sum())


def _kernel(d: np.ndarray, scale: float) -> np.ndarray:
    return np.asarray(np.exp(-(d**2) / (2 * scale**2)))


def duplicate_rate(Y: np.ndarray, min_cosine: float = DUPLICATE_COSINE) -> float:
    """Share of the subset's images that have another subset image at cosine >= min_cosine."""
    if len(Y) < 2:
        return 0.0
    unit = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
    dist, _ = knn(unit, 1)
    # On unit vectors |a - b|^2 = 2 - 2 cos(a, b).
    return float((dist[:, 0] <= np.sqrt(max(0.0, 2 - 2 * min_cosine)) + 1e-9).mean())


def random_subset(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, size, replace=False)


def random_subsets(n: int, size: int, seeds: int) -> list[np.ndarray]:
    """Seeded uniform random subsets, seeds 0..seeds-1 (the same for every caller)."""
    return [random_subset(n, size, s) for s in range(seeds)]


@dataclass(frozen=True)
class ModeLabels:
    """The visual mode of each image as the user knows it (a source photograph, a breed, a
    camera): ``label(path)`` for a manifest path (relative to INPUT), None where it has none."""

    source: str  # what the labels come from, as evaluation.json records it
    label: Callable[[str], str | None]

    @classmethod
    def from_csv(cls, path: str | Path, column: str = "mode") -> ModeLabels:
        """A CSV file with a ``path`` column (relative to INPUT, as in manifest.csv) and ``column``;
        an empty cell is no mode. A path listed twice with two labels is refused."""
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                header = reader.fieldnames or []
                for need in ("path", column):
                    if need not in header:
                        raise UsageError(f"{path} has no {need!r} column (its columns: "
                                         f"{', '.join(header) or 'none'})", option="modes")
                labels: dict[str, str] = {}
                for line, row in enumerate(reader, start=2):
                    rel, mode = (row.get("path") or "").strip(), (row.get(column) or "").strip()
                    if rel and mode and labels.setdefault(rel, mode) != mode:
                        raise UsageError(f"{path} line {line}: {rel} is labelled both "
                                         f"{labels[rel]!r} and {mode!r}", option="modes")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}", option="modes") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"{path} is not a UTF-8 CSV file ({exc})", option="modes") from None
        if not labels:
            raise UsageError(f"{path} labels no image in its {column!r} column", option="modes")
        return cls(f"{Path(path).name}:{column}", labels.get)

    @classmethod
    def from_pattern(cls, pattern: str) -> ModeLabels:
        """A regular expression searched in each path: its first group (else the whole match) is
        the mode, e.g. ``'/(\\w+)_\\d+\\.jpg$'`` for ``<mode>_<n>.jpg`` names."""
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"is not a regular expression: {exc}", option="mode_pattern") from None

        def label(path: str) -> str | None:
            found = compiled.search(path)
            if found is None:
                return None
            return (found.group(1) if compiled.groups else found.group(0)) or None

        return cls(f"pattern:{pattern}", label)


@dataclass(frozen=True)
class Spread:
    """A figure over the random subsets: mean and standard deviation (None: no subset had it)."""

    mean: float | None
    std: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "std": self.std}


def summarize(values: Sequence[float | None]) -> Spread:
    real = [v for v in values if v is not None]
    if not real:
        return Spread(None, None)
    return Spread(float(np.mean(real)), float(np.std(real)))


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


# -- the result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeScores:
    """Modes covered: how many of the labelled modes a subset holds (higher is better)."""

    total: int  # distinct modes among the images scored
    selection: int
    random: Spread
    random_counts: tuple[int, ...]  # per random seed, to sum across groups
    missed: tuple[str, ...]  # the modes the selection lacks, sorted

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "selection": self.selection, "random": self.random.to_dict(),
                "missed": list(self.missed)}


@dataclass(frozen=True)
class GroupScores:
    """One group: the selection's figures and random subsets' of the same size."""

    images: int  # valid images
    selected: int
    selection: Scores
    random: dict[str, Spread]  # metric -> spread over the random subsets
    modes: ModeScores | None = None  # where mode labels were given and label one of its images

    def to_dict(self) -> dict[str, Any]:
        out = {"images": self.images, "selected": self.selected, "selection": dict(self.selection),
               "random": {m: s.to_dict() for m, s in self.random.items()}}
        if self.modes is not None:
            out[MODES] = self.modes.to_dict()
        return out


@dataclass(frozen=True)
class OverallScores:
    """Image-weighted means of the group figures (coverage_max: the worst group); None where a
    group lacks the figure."""

    selection: Scores
    random: Scores  # of the groups' random means

    def to_dict(self) -> dict[str, Any]:
        return {"selection": dict(self.selection), "random": dict(self.random)}


@dataclass(frozen=True)
class ProbeScores:
    """Linear-probe accuracy: trained on the train split's subsets, tested on all of a held-out one."""

    train_split: str
    test_split: str
    classes: tuple[str, ...]
    test_images: int
    selection: float | None
    random: Spread

    def to_dict(self) -> dict[str, Any]:
        return {"train_split": self.train_split, "test_split": self.test_split,
                "classes": list(self.classes), "test_images": self.test_images,
                "selection": self.selection, "random": self.random.to_dict()}


@dataclass(frozen=True)
class OverallModes:
    """Modes covered in all groups together (a mode counts once per group that holds it)."""

    source: str  # ModeLabels.source
    total: int
    selection: int
    random: Spread  # of the per-seed sums over groups

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total": self.total, "selection": self.selection,
                "random": self.random.to_dict()}


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate_output` found; ``to_dict()`` is the content of OUTPUT/evaluation.json."""

    scored: dict[str, str]  # the selection scored (records.Run.selection_id)
    seeds: int
    duplicate_min_cosine: float
    groups: dict[str, GroupScores]
    overall: OverallScores
    linear_probe: ProbeScores | None  # None: no train and held-out split with two shared classes
    modes: OverallModes | None = None  # None: no mode labels given, or none matched an image

    def to_dict(self) -> dict[str, Any]:
        out = {"scored": dict(self.scored), "seeds": self.seeds,
               "duplicate_min_cosine": self.duplicate_min_cosine,
               "groups": {name: g.to_dict() for name, g in self.groups.items()},
               "overall": self.overall.to_dict(),
               PROBE: None if self.linear_probe is None else self.linear_probe.to_dict()}
        if self.modes is not None:
            out[MODES] = self.modes.to_dict()
        return out


# -- an OUTPUT folder of `repsample select` ---------------------------------------------------


@dataclass(frozen=True)
class GroupEmbeddings:
    """One group's valid images as embeddings, and which of them the selector saw and picked."""

    name: str
    X: np.ndarray
    selected: np.ndarray  # row numbers
    clusters: np.ndarray  # label per row, -1 where none (an image not eligible has no cluster)
    eligible: np.ndarray  # row numbers the selector could pick; random subsets draw from these
    paths: tuple[str, ...] = ()  # per row, relative to INPUT (mode labels are looked up by it)
    weights: np.ndarray | None = None  # the manifest's, per selected row, summing to 1; None: none
    seed: int = 0  # the run's: random subsets are weighed as select weighed the selection

    def random_subset(self, seed: int) -> np.ndarray:
        """Seeded uniform rows, as many as were selected, among the eligible ones."""
        return np.asarray(self.eligible[random_subset(len(self.eligible), len(self.selected), seed)])

    def subset_weights(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """Weights for random subsets (rows among the eligible ones), solved as select solves its
        own among the eligible images; None where the selection has no weights to compare."""
        if self.weights is None:
            return None
        weigher = Weigher(self.X[self.eligible], self.seed)
        return lambda rows: weigher.weights(np.searchsorted(self.eligible, rows))


def evaluate_output(output: str | Path, *, seeds: int = 5, cache: str | Path | None = None,
                    modes: ModeLabels | None = None) -> EvaluationResult:
    """Score the selection in OUTPUT against random subsets; writes OUTPUT/evaluation.json,
    which names the selection it scored (records.Run.selection_id). modes: each image's visual
    mode where the user knows it; modes covered are then scored too."""
    from repsample.output.files import write_atomic
    from repsample.output.publish import update_output

    validate({"seeds": seeds}, {"seeds": Integer(1)})
    out = Path(output)
    read_run(out)  # a missing or tampered OUTPUT is one line naming OUTPUT, not the stage

    def score(stage: Path) -> EvaluationResult:
        # Read under OUTPUT's lock: the selection scored is the one the evaluation lands beside.
        run = read_run(stage)
        groups = load_groups(run, Path(cache or run.record.cache))
        scores = {g.name: evaluate_group(g, seeds, modes) for g in groups}
        held = None if modes is None else overall_modes(scores, modes.source)
        if modes is not None and held is None:
            raise UsageError(f"the mode labels ({modes.source}) give no image of {out} a mode "
                             "(paths are relative to INPUT, as in manifest.csv)")
        result = EvaluationResult(run.selection_id, seeds, DUPLICATE_COSINE, scores, overall(scores),
                                  probe_splits(groups, seeds), held)
        write_atomic(stage / EVALUATION, json.dumps(result.to_dict(), indent=2) + "\n")
        return result

    return update_output(out, score)


def load_groups(run: Run, cache_path: Path) -> list[GroupEmbeddings]:
    from repsample.cache import ContentCache

    if not cache_path.is_file():
        raise RepsampleError(f"embedding cache {cache_path} not found; pass {mention('cache')} with the "
                             "database that `repsample select` used")
    usable = [r for r in run.manifest.rows if r.status in ("selected", "not_selected") and r.hash]
    with ContentCache(cache_path, read_only=True) as db:  # run.json may name any file
        entries = db.get_many([r.hash for r in usable], run.record.cache_key)
    by_group: dict[str, list[ManifestRow]] = {}
    for r in usable:
        entry = entries.get(r.hash)
        if entry is None or entry.vector is None:
            raise RepsampleError(f"the cache {cache_path} lacks the embedding of {r.path}; "
                                 "rerun `repsample select` with that cache")
        by_group.setdefault(r.group, []).append(r)
    could_pick = eligibility(run)
    groups = []
    for name, members in sorted(by_group.items()):
        X = np.stack([entries[r.hash].vector for r in members])  # type: ignore[misc]
        selected = np.flatnonzero([r.status == "selected" for r in members])
        clusters = np.asarray([-1 if r.cluster is None else r.cluster for r in members])
        eligible = np.flatnonzero([could_pick(r) for r in members])
        groups.append(GroupEmbeddings(name, X, selected, clusters, eligible,
                                      tuple(r.path for r in members),
                                      manifest_weights([members[i] for i in selected]),
                                      run.record.seed or 0))
    return groups


def manifest_weights(selected: Sequence[ManifestRow]) -> np.ndarray | None:
    """The selected rows' weights, scaled to sum to 1 (a hand-edited manifest may not); None
    where one lacks its weight (a manifest from before the column) or they sum to 0."""
    if not selected or any(r.weight is None for r in selected):
        return None
    weights = np.asarray([r.weight for r in selected], dtype=np.float64)
    total = float(weights.sum())
    return weights / total if total > 0 else None


def eligibility(run: Run) -> Callable[[ManifestRow], bool]:
    """Whether the selector could have picked a valid row: a selected row always (an earlier
    selection may have kept it), another one when the manifest gives it no ``reason`` (duplicate,
    leak, outlier). A manifest from before the column: read as run.json's "check" says select
    ran, not a duplicate with dedup on, not a train-split leak with --drop-leaks."""
    if "reason" in run.manifest.columns:
        return lambda row: row.status == "selected" or not row.reason
    check = run.record.data.get("check")
    dedup = bool(check.get("dedup")) if isinstance(check, dict) else False
    drop_leaks = bool(check.get("drop_leaks")) if isinstance(check, dict) else False

    def could_pick(row: ManifestRow) -> bool:
        if row.status == "selected":
            return True
        if dedup and row.duplicate_of:
            return False
        return not (drop_leaks and row.leak_with and is_train_split(split_of(row.group)))

    return could_pick


def evaluate_group(g: GroupEmbeddings, seeds: int, modes: ModeLabels | None = None) -> GroupScores:
    ref = Reference.build(g.X, g.clusters)
    weigh = g.subset_weights()
    draws = [g.random_subset(s) for s in range(seeds)]
    chance = [ref.score(rows, None if weigh is None else weigh(rows)) for rows in draws]
    held = None if modes is None else mode_scores(g, seeds, [modes.label(p) for p in g.paths])
    return GroupScores(len(g.X), len(g.selected), ref.score(g.selected, g.weights),
                       {m: summarize([c[m] for c in chance]) for m in METRICS}, held)


def mode_scores(g: GroupEmbeddings, seeds: int, labels: Sequence[str | None]) -> ModeScores | None:
    """Modes the selection holds and random subsets (the same as for the other figures) hold;
    None when no image of the group has a mode."""
    present = {m for m in labels if m is not None}
    if not present:
        return None

    def held(rows: np.ndarray) -> set[str]:
        return {m for m in (labels[int(i)] for i in rows) if m is not None}

    mine = held(g.selected)
    counts = tuple(len(held(g.random_subset(s))) for s in range(seeds))
    return ModeScores(len(present), len(mine), summarize([float(c) for c in counts]), counts,
                      tuple(sorted(present - mine)))


def overall_modes(groups: Mapping[str, GroupScores], source: str) -> OverallModes | None:
    """Sums over the groups that have modes; random's spread is over the per-seed sums."""
    held = [g.modes for g in groups.values() if g.modes is not None]
    if not held:
        return None
    per_seed = np.sum([m.random_counts for m in held], axis=0)
    return OverallModes(source, sum(m.total for m in held), sum(m.selection for m in held),
                        summarize([float(c) for c in per_seed]))


def overall(groups: Mapping[str, GroupScores]) -> OverallScores:
    """Image-weighted means of the group figures (coverage_max: the worst group)."""
    weights = np.asarray([g.images for g in groups.values()], dtype=np.float64)

    def combine(values: list[float | None], metric: str) -> float | None:
        if not values or any(v is None for v in values):
            return None
        real = np.asarray(values, dtype=np.float64)
        return float(real.max() if metric == "coverage_max" else np.average(real, weights=weights))

    return OverallScores(
        {m: combine([g.selection[m] for g in groups.values()], m) for m in METRICS},
        {m: combine([g.random[m].mean for g in groups.values()], m) for m in METRICS})


def split_class(name: str) -> tuple[str, str] | None:
    parts = name.split("/", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def probe_splits(groups: Sequence[GroupEmbeddings], seeds: int) -> ProbeScores | None:
    """Train on the train split's subsets, test on every image of a held-out split."""
    by_split: dict[str, dict[str, GroupEmbeddings]] = {}
    for g in groups:
        sc = split_class(g.name)
        if sc:
            by_split.setdefault(sc[0], {})[sc[1]] = g
    trained, held = train_split(by_split), held_out_split(by_split)
    if trained is None or held is None:
        return None
    classes = sorted(set(by_split[trained]) & set(by_split[held]))
    if len(classes) < 2:
        return None
    train = [by_split[trained][c] for c in classes]
    X_test = np.vstack([by_split[held][c].X for c in classes])
    y_test = np.concatenate([np.full(len(by_split[held][c].X), i) for i, c in enumerate(classes)])

    def accuracy(subsets: list[np.ndarray]) -> float | None:
        X = np.vstack([g.X[rows] for g, rows in zip(train, subsets, strict=True)])
        y = np.concatenate([np.full(len(rows), i) for i, rows in enumerate(subsets)])
        return linear_probe(X, y, X_test, y_test)

    mine = accuracy([g.selected for g in train])
    chance = [accuracy([g.random_subset(s) for g in train]) for s in range(seeds)]
    return ProbeScores(trained, held, tuple(classes), len(y_test), mine, summarize(chance))
