"""centroid + equal reproduces the original method where its arithmetic does not fall short."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from repsample import CentroidSelector


def original_method(features: np.ndarray, total_images: int = 1000) -> tuple[list[int], int]:
    """A faithful re-implementation of the original script's choose-k and select steps."""
    best_k, best_score = 5, -1.0
    for k in range(5, min(21, len(features))):
        kmeans = KMeans(n_clusters=k, random_state=42)
        labels = kmeans.fit_predict(features)
        score = silhouette_score(features, labels)
        if score > best_score:
            best_k, best_score = k, score
    kmeans = KMeans(n_clusters=best_k, random_state=42)
    labels = kmeans.fit_predict(features)
    total = min(total_images, len(features))
    per_cluster = total // best_k
    selected: list[int] = []
    for cluster_id in range(best_k):
        cluster_indices = np.where(labels == cluster_id)[0]
        distances = np.linalg.norm(
            features[cluster_indices] - kmeans.cluster_centers_[cluster_id], axis=1)
        closest = cluster_indices[np.argsort(distances)[:per_cluster]]
        selected.extend(closest.tolist())
    return sorted(selected), best_k


def blobs(n: int, dim: int, centers: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 6, (centers, dim))
    return (means[rng.integers(0, centers, n)] + rng.normal(0, 1, (n, dim))).astype(np.float32)


@pytest.mark.parametrize(("n", "centers", "seed"), [(300, 6, 0), (500, 8, 1), (240, 5, 2)])
def test_same_picks_as_the_original(n: int, centers: int, seed: int) -> None:
    X = blobs(n, 32, centers, seed)
    # probe k first, then budget a multiple of it
    sel = CentroidSelector(n_select=n - 1, allocation="equal").fit(X)
    k = sel.k_
    smallest = int(np.bincount(sel.labels_).min())
    budget = k * min(smallest, 4)
    expected, original_k = original_method(X, budget)
    assert len(expected) == budget, "the original must not fall short in this case"

    ours = CentroidSelector(n_select=budget, allocation="equal").fit(X)

    assert ours.k_ == original_k
    assert ours.selected_indices_.tolist() == expected


def test_exact_count_where_the_original_falls_short() -> None:
    X = blobs(400, 16, 7, 3)
    budget = 103  # not a multiple of any k in 5..20 that could be chosen
    original, _ = original_method(X, budget)
    ours = CentroidSelector(n_select=budget, allocation="equal").fit(X)
    assert len(original) < budget
    assert len(ours.selected_indices_) == budget
    assert len(set(ours.selected_indices_.tolist())) == budget
    assert set(original) <= set(ours.selected_indices_.tolist())


def test_small_cluster_slack_goes_to_others() -> None:
    rng = np.random.default_rng(5)
    big = rng.normal(0, 1, (200, 8))
    tiny = rng.normal(40, 0.1, (3, 8))  # a cluster far away with 3 members
    X = np.vstack([big, tiny]).astype(np.float32)
    sel = CentroidSelector(n_select=60, allocation="equal", k_min=2, k_max=6).fit(X)
    assert len(sel.selected_indices_) == 60
    assert {200, 201, 202} <= set(sel.selected_indices_.tolist())
    assert sel.quotas_.sum() == 60 and (sel.quotas_ <= np.bincount(sel.labels_)).all()


def test_selector_attributes_and_small_inputs() -> None:
    X = blobs(50, 4, 5, 9)
    sel = CentroidSelector(n_select=10, random_state=3).fit(X)
    assert sel.labels_.shape == (50,) and sel.distances_.shape == (50,)
    assert sel.cluster_centers_.shape == (sel.k_, 4)
    assert set(sel.silhouette_scores_) == set(range(5, 21))
    whole = CentroidSelector(n_select=50).fit(X)
    assert whole.k_ == 0 and whole.selected_indices_.tolist() == list(range(50))
    two = CentroidSelector(n_select=1).fit(X[:2])
    assert len(two.selected_indices_) == 1 and two.k_ == 1
    with pytest.raises(ValueError, match="n_select"):
        CentroidSelector(n_select=0).fit(X)
    with pytest.raises(ValueError, match="2D"):
        CentroidSelector().fit(X[0])


def test_k_never_exceeds_distinct_points() -> None:
    X = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # 40 rows, 4 distinct points
    sel = CentroidSelector(n_select=6).fit(X)
    assert sel.k_ <= 3 and len(sel.selected_indices_) == 6


@pytest.mark.parametrize("strategy", ["centroid", "random", "kcenter", "typical", "facility", "herding"])
def test_pick_order_is_a_ranking_within_each_cluster(strategy: str) -> None:
    from repsample.selection.strategies import STRATEGIES

    X = blobs(300, 8, 5, 4)
    sel = STRATEGIES.get(strategy)(n_select=40, random_state=1).fit(X)
    chosen = sel.selected_indices_
    assert (sel.pick_order_[chosen] > 0).all()
    assert (np.delete(sel.pick_order_, chosen) == 0).all()
    for c in range(sel.k_):
        mine = chosen[sel.labels_[chosen] == c]
        assert sorted(sel.pick_order_[mine].tolist()) == list(range(1, len(mine) + 1))
    if strategy == "centroid":  # its order is nearest to the centre first
        for c in range(sel.k_):
            mine = chosen[sel.labels_[chosen] == c]
            by_rank = mine[np.argsort(sel.pick_order_[mine])]
            assert (np.diff(sel.distances_[by_rank]) >= 0).all()
