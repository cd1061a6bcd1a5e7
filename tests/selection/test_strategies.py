"""Every strategy x allocation: exact counts, determinism, --keep, and the direction of each score."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repsample.selection.allocate import list_selection_allocations
from repsample.selection.cluster import Clustering, choose_k
from repsample.selection.greedy import facility_greedy, farthest_first, typicality
from repsample.selection.strategies import STRATEGIES, TypicalSelector, centre_distances

STRATEGY_NAMES = STRATEGIES.names()


def modes(seed: int = 0) -> np.ndarray:
    """Two big blobs and a rare far mode of 4 points (1 % of the rows), 16-d."""
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (250, 16)), rng.normal(6, 1, (146, 16)),
                      rng.normal(-12, 0.3, (4, 16))]).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, Clustering]:
    X = modes()
    return X, choose_k(X, 3, 6, 42, 3000)  # clustered once; every test below reuses it


def test_registry_holds_every_strategy() -> None:
    assert set(STRATEGY_NAMES) == {"centroid", "random", "stratified", "kcenter", "typical",
                                   "facility", "herding", "cover", "refine"}


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize("allocation", list_selection_allocations())
@pytest.mark.parametrize("budget", [1, 3, 17, 250, 399])
def test_exact_count(data: tuple[np.ndarray, Clustering], strategy: str, allocation: str,
                     budget: int) -> None:
    X, clustering = data
    sel = STRATEGIES.get(strategy)(budget, allocation=allocation).fit(X, clustering=clustering)
    rows = sel.selected_indices_
    assert len(rows) == budget and len(np.unique(rows)) == budget
    assert rows.min() >= 0 and rows.max() < len(X)
    assert sel.quotas_.sum() == budget
    assert (sel.quotas_ <= np.bincount(sel.labels_)).all()


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_rare_mode_gets_an_image_once_the_budget_covers_every_cluster(
        data: tuple[np.ndarray, Clustering], strategy: str) -> None:
    X, clustering = data
    rare_cluster = clustering.labels[-1]
    assert (clustering.labels == rare_cluster).sum() == 4, "the rare mode is a cluster of its own"
    for allocation in ("proportional", "sqrt", "equal"):
        if strategy == "random":
            continue  # random ignores clusters: that is the bias the others fix
        sel = STRATEGIES.get(strategy)(clustering.k, allocation=allocation).fit(
            X, clustering=clustering)
        assert (sel.selected_indices_ >= 396).any(), allocation


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_deterministic_for_a_seed(strategy: str) -> None:
    X = modes(1)[::2]
    first = STRATEGIES.get(strategy)(20, allocation="sqrt", k_min=2, k_max=4, random_state=7).fit(X)
    again = STRATEGIES.get(strategy)(20, allocation="sqrt", k_min=2, k_max=4, random_state=7).fit(X)
    assert first.selected_indices_.tolist() == again.selected_indices_.tolist()


@pytest.mark.parametrize("strategy", ["random", "stratified"])
def test_random_strategies_follow_the_seed(data: tuple[np.ndarray, Clustering],
                                           strategy: str) -> None:
    X, clustering = data
    picks = {tuple(STRATEGIES.get(strategy)(30, random_state=s).fit(
        X, clustering=clustering).selected_indices_) for s in range(3)}
    assert len(picks) == 3


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
@pytest.mark.parametrize("allocation", ["equal", "proportional"])
def test_keep_stays_and_is_topped_up(data: tuple[np.ndarray, Clustering], strategy: str,
                                     allocation: str) -> None:
    X, clustering = data
    keep = [0, 5, 260, 398]
    sel = STRATEGIES.get(strategy)(40, allocation=allocation).fit(X, keep=keep, clustering=clustering)
    assert set(keep) <= set(sel.selected_indices_.tolist())
    assert len(sel.selected_indices_) == 40 and sel.kept_indices_.tolist() == keep
    over = STRATEGIES.get(strategy)(3, allocation=allocation).fit(X, keep=keep, clustering=clustering)
    assert over.selected_indices_.tolist() == keep  # never drops a kept image


def test_keep_grown_dataset_adds_only_new_picks(data: tuple[np.ndarray, Clustering]) -> None:
    X, clustering = data
    first = STRATEGIES.get("facility")(30).fit(X, clustering=clustering).selected_indices_
    grown = STRATEGIES.get("facility")(60).fit(X, keep=first, clustering=clustering).selected_indices_
    assert set(first) < set(grown) and len(grown) == 60


def test_keep_rejects_rows_outside_the_matrix(data: tuple[np.ndarray, Clustering]) -> None:
    X, clustering = data
    with pytest.raises(ValueError, match="outside"):
        STRATEGIES.get("centroid")(10).fit(X, keep=[len(X)], clustering=clustering)


def line_with_outlier() -> np.ndarray:
    core = np.linspace(-1, 1, 41)[:, None] * np.array([[1.0, 0.0]])
    return np.vstack([core, [[0.0, 25.0]]])  # row 41 is far from everything


def test_an_outlier_is_never_more_typical_than_the_centre() -> None:
    X = line_with_outlier()
    typ = typicality(X, k=5)
    assert typ[41] < typ.min(initial=np.inf, where=np.arange(42) != 41)
    assert typ[20] > typ[0]  # the middle of the line is denser than its end


def test_typical_selector_exposes_typicality_and_prefers_the_core() -> None:
    X = np.vstack([line_with_outlier(), line_with_outlier() + 100])
    sel = TypicalSelector(2, k_min=2, k_max=2).fit(X)
    assert np.isfinite(sel.typicality_).all()
    assert 41 not in sel.selected_indices_ and 83 not in sel.selected_indices_


def test_centroid_prefers_the_centre_and_kcenter_the_edge() -> None:
    X = line_with_outlier()
    assert farthest_first(X, np.empty((0, 2)), 2, start=20).tolist() == [20, 41]
    order = np.argsort(np.linalg.norm(X - X.mean(axis=0), axis=1))
    assert order[-1] == 41


def test_facility_location_picks_the_representative_point_first() -> None:
    X = line_with_outlier()
    first = facility_greedy(X, 1, np.empty(0, dtype=np.int64), k=10)
    assert 5 <= int(first[0]) <= 35  # a point with a full neighbourhood: not an end, not the outlier
    all_picks = facility_greedy(X, 42, np.empty(0, dtype=np.int64), k=10)
    assert sorted(all_picks.tolist()) == list(range(42))
    kept = facility_greedy(X, 3, np.array([20]), k=10)
    assert 20 not in kept.tolist() and len(kept) == 3


def test_facility_memory_is_sparse() -> None:
    from repsample.selection.greedy import knn_similarity

    rows, cols, sims = knn_similarity(np.random.default_rng(0).normal(size=(500, 8)), 10)
    assert len(rows) == len(cols) == len(sims) == 500 * 11  # n (k + 1), never n^2
    assert (sims > 0).all() and (sims <= 1).all()


def test_herding_starts_at_the_centre_and_spreads_out() -> None:
    from repsample.selection.greedy import kernel_herding

    X = line_with_outlier()
    rng = np.random.RandomState(0)
    picks = kernel_herding(X, 3, np.empty(0, dtype=np.int64), rng).tolist()
    assert abs(picks[0] - 20) <= 1 and 41 not in picks  # the kernel mean peaks mid-line
    assert min(abs(picks[1] - 20), abs(picks[2] - 20)) >= 5  # then away from what it has
    assert sorted(kernel_herding(X, 42, np.empty(0, dtype=np.int64), rng).tolist()) == list(
        range(42))


# -- cover: coverage first, then herding (issue 14) ------------------------------------------


def bulk_and_small_modes(seed: int = 0) -> tuple[np.ndarray, Clustering]:
    """One cluster: a bulk of 400 points and three far modes of 4 points each."""
    rng = np.random.default_rng(seed)
    far = [rng.normal(centre, 0.1, (4, 8)) for centre in (6.0, -6.0, 9.0)]
    X = np.vstack([rng.normal(0, 1, (400, 8)), *far])
    one = Clustering(1, np.zeros(len(X), dtype=np.int64), X.mean(axis=0, keepdims=True))
    return X, one


def test_cover_reaches_small_far_modes_that_herding_leaves_out() -> None:
    X, one = bulk_and_small_modes()
    small = np.arange(400, 412) // 4 - 100  # mode 0, 1, 2 of the far points
    herding = STRATEGIES.get("herding")(10).fit(X, clustering=one).selected_indices_
    cover = STRATEGIES.get("cover")(10, cover_share=0.4).fit(X, clustering=one).selected_indices_
    held = {int(small[r - 400]) for r in cover if r >= 400}
    assert held == {0, 1, 2}  # 4 coverage picks: the most central image, then the 3 far modes
    assert len({int(small[r - 400]) for r in herding if r >= 400}) < 3


def test_cover_keeps_refines_cluster_quotas_and_is_refine_at_share_zero(
        data: tuple[np.ndarray, Clustering]) -> None:
    X, clustering = data
    for budget in (7, 40, 150):
        herding = STRATEGIES.get("refine")(budget, random_state=3).fit(X, clustering=clustering)
        cover = STRATEGIES.get("cover")(budget, random_state=3).fit(X, clustering=clustering)
        assert cover.quotas_.tolist() == herding.quotas_.tolist()
        zero = STRATEGIES.get("cover")(budget, cover_share=0.0, random_state=3)
        assert zero.fit(X, clustering=clustering).selected_indices_.tolist() == \
            herding.selected_indices_.tolist()


def test_farthest_first_keeps_to_the_room_of_each_cluster() -> None:
    X = np.r_[np.zeros((5, 2)), np.full((5, 2), 10.0)]
    clusters = np.repeat([0, 1], 5)
    order = farthest_first(X, X[:0], 4, start=0, clusters=clusters, room=np.array([3, 1]))
    assert np.bincount(clusters[order], minlength=2).tolist() == [3, 1]
    assert len(farthest_first(X, X[:0], 8, clusters=clusters, room=np.array([1, 1]))) == 2


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 40), st.integers(1, 9), st.integers(1, 1024),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_centre_distances_in_blocks_are_the_one_shot_values(
        n: int, dim: int, k: int, block: int, dtype: type, seed: int) -> None:
    """Blocks bound the memory (no n x dim temporaries) and change no bit of any distance, so
    centroid's picks and the manifest's distance column stay as they were."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, dim)) * rng.uniform(0.01, 100)).astype(dtype)
    centers = rng.normal(size=(k, dim)).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    whole = np.linalg.norm(X - centers[labels], axis=1)
    blocks = centre_distances(X, centers, labels, block)
    assert blocks.dtype == whole.dtype and np.array_equal(blocks, whole)
