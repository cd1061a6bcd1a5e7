"""The built-in selection strategies by name, with what each picks, for listings that must not
import scikit-learn (``repsample strategies`` took 4 s to print eight lines). The selectors
themselves are in select.py, which registers one class under each of these names; a test holds
each summary to the first line of its class's docstring.
"""

from __future__ import annotations

BUILT_IN: dict[str, str] = {
    "centroid": "Nearest to each cluster centre (the original method): typical, but edges and rare "
                "modes out.",
    "cover": "Coverage first, then herding: the farthest images take a share of the budget, "
             "herding the rest.",
    "facility": "Greedy facility location on a sparse kNN similarity: every image well represented.",
    "herding": "Kernel herding in each cluster: picks whose spread tracks the cluster's (least MMD).",
    "kcenter": "Greedy farthest-point (k-center) coverage in each cluster: edges and rare modes "
               "first.",
    "random": "Uniform random over the whole group (seeded); the baseline. Clusters only for the "
              "record.",
    "stratified": "Uniform random inside each cluster, cluster quotas from the allocation (seeded).",
    "typical": "TypiClust: split each cluster into quota parts, take the densest (kNN) image of each.",
}
