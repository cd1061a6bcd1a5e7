"""Allocation schemes: exact to the image, capped per cluster, >= 1 per cluster when possible."""

from __future__ import annotations

import numpy as np
import pytest

from repsample.selection.allocate import allocate, list_allocations
from repsample.selection.strategies import top_up

SCHEMES = list_allocations()


def test_schemes_registered() -> None:
    assert SCHEMES == ["equal", "proportional", "sqrt"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_exact_capped_and_one_each_on_random_cases(scheme: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(0, 60, rng.integers(1, 12))
        sizes[rng.random(len(sizes)) < 0.3] = rng.integers(1, 3)  # small clusters: rare modes
        budget = int(rng.integers(0, sizes.sum() + 10))
        quotas = allocate(sizes, budget, scheme)
        assert quotas.sum() == min(budget, sizes.sum())
        assert (quotas >= 0).all() and (quotas <= sizes).all()
        if budget >= (sizes > 0).sum():
            assert (quotas[sizes > 0] >= 1).all(), (sizes, budget)


def test_shares_follow_the_scheme() -> None:
    sizes = [400, 100]
    assert allocate(sizes, 50, "equal").tolist() == [25, 25]
    assert allocate(sizes, 50, "proportional").tolist() == [40, 10]
    assert allocate(sizes, 30, "sqrt").tolist() == [20, 10]  # sqrt weights 20:10


def test_one_image_for_a_tiny_cluster_when_the_budget_allows() -> None:
    assert allocate([990, 10], 20, "proportional").tolist() == [19, 1]
    assert allocate([995, 5], 2, "proportional").tolist() == [1, 1]
    assert allocate([995, 5], 1, "proportional").tolist() == [1, 0]  # the budget does not allow


def test_equal_hands_slack_on_like_the_core() -> None:
    assert allocate([5, 3], 100, "equal").tolist() == [5, 3]
    assert allocate([2, 50, 50], 30, "equal").tolist() == [2, 14, 14]


def test_top_up_keeps_kept_and_fills_the_gaps() -> None:
    sizes = np.array([100, 100, 10])
    kept = np.array([30, 0, 0])
    new = top_up(sizes, kept, 45, "equal")
    assert new.sum() == 15 and (kept + new <= sizes).all()
    assert new[0] == 0  # already past its share of 15
    assert top_up(sizes, np.array([50, 0, 0]), 40, "equal").sum() == 0  # nothing to add
    assert (top_up(sizes, np.zeros(3, dtype=np.int64), 45, "sqrt")
            == allocate(sizes, 45, "sqrt")).all()
