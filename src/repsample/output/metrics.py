"""The metrics OUTPUT/evaluation.json holds, each named, labelled and directed once.

`repsample evaluate` (repsample.evaluate) computes them and the report (repsample.report.evaluation)
draws them; the two are siblings that never import each other, so the catalogue lives here, beside
OUTPUT's other layouts, and loads no scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

DUPLICATE_COSINE = 0.95
"""Two images are near-duplicates when their embeddings' cosine similarity is at least this. On
bench/duplicates.py's real photos (efficientnet-lite0) it holds most planted re-encodes, resizes
and flips (medians 0.98, 0.995, 0.97) and no pair of distinct photos (their highest: 0.94)."""
PROBE = "linear_probe"
MODES = "modes"
WEIGHTED_MMD = "mmd_weighted"


@dataclass(frozen=True)
class Metric:
    label: str
    lower_is_better: bool
    about: str


METRICS: dict[str, Metric] = {
    "coverage_mean": Metric("coverage (mean)", True,
                            "mean distance from every image to its nearest selected image"),
    "coverage_max": Metric("coverage (max)", True,
                           "distance of the worst-covered image to its nearest selected image"),
    "mmd": Metric("MMD", True, "distribution distance between subset and group (RBF kernel)"),
    WEIGHTED_MMD: Metric("MMD (weighted)", True,
                         "MMD with the subset weighted by the manifest's weight column (random "
                         "subsets by their own MMD-optimal weights)"),
    "cluster_tv": Metric("cluster TV", True,
                         "total variation between the subset's and the group's cluster shares"),
    "duplicate_rate": Metric("near-duplicate rate", True,
                             "share of selected images with a near-duplicate in the subset "
                             f"(embedding cosine >= {DUPLICATE_COSINE:g})"),
    PROBE: Metric("linear-probe accuracy", False,
                  "logistic regression trained on the train subset, tested on the held-out split"),
    MODES: Metric("modes covered", False,
                  "distinct modes the subset holds, of those the user labelled (evaluate --modes)"),
}
"""Every figure of evaluation.json by its key: the subset figures, the linear probe, modes covered."""
SUBSET_FIGURES = tuple(name for name in METRICS if name not in (PROBE, MODES))
"""The figures scored on every subset of a group, the selection's and each random one's."""
