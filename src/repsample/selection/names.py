"""The built-in selection strategies by name, with what each picks and the parameters each lets
a user set, for listings that must not import scikit-learn (``repsample strategies`` took 4 s to
print eight lines). The selectors themselves are in strategies.py, which registers one class
under each of these names; tests hold each summary to the first line of its class's docstring
and each class's ``tunable`` to ``PARAMETERS``.
"""

from __future__ import annotations

from repsample.params import Integer, Interval, Tunable

# Each tunable parameter, declared once: the selectors' defaults and constraints read these.
N_NEIGHBORS = Tunable("n_neighbors", 20, Integer(1), "neighbours read per image in its cluster "
                      "(capped at the cluster's size - 1)")
COVER_SHARE = Tunable("cover_share", 0.2, Interval(0.0, 1.0), "share of the budget picked "
                      "farthest-first before refinement; 0 is refine")

BUILT_IN: dict[str, str] = {
    "centroid": "Nearest to each cluster centre (the original method): typical, but edges and rare "
                "modes out.",
    "cover": "Coverage first, then refinement: the farthest images take a share of the budget, "
             "refine the rest.",
    "facility": "Greedy facility location on a sparse kNN similarity: every image well represented.",
    "herding": "Kernel herding in each cluster: picks whose spread tracks the cluster's (v0.2's default).",
    "kcenter": "Greedy farthest-point (k-center) coverage in each cluster: edges and rare modes "
               "first.",
    "random": "Uniform random over the whole group (seeded); the baseline. Clusters only for the "
              "record.",
    "refine": "Closest to the whole group: kernel herding refined by annealed exchanges (least MMD).",
    "stratified": "Uniform random inside each cluster, cluster quotas from the allocation (seeded).",
    "typical": "TypiClust: split each cluster into quota parts, take the densest (kNN) image of each.",
}

PARAMETERS: dict[str, tuple[Tunable, ...]] = {
    "typical": (N_NEIGHBORS,),
    "facility": (N_NEIGHBORS,),
    "cover": (COVER_SHARE,),
}
"""The parameters each built-in strategy lets a user set by name; the others have none."""
