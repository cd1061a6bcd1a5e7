"""Clustering that scales: the k sweep on a sample above SWEEP_LIMIT, the original's fits below."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import repsample.cluster as cluster
from repsample.cluster import choose_k, count_distinct


def blobs(n: int, dim: int, centers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 5, (centers, dim))
    truth = rng.integers(0, centers, n)
    return (means[truth] + rng.normal(0, 1, (n, dim))).astype(np.float32), truth


def test_below_the_limit_every_fit_is_the_originals() -> None:
    X, _ = blobs(900, 12, 7, 0)
    c = choose_k(X, 5, 9, seed=42)
    expected = KMeans(n_clusters=c.k, random_state=42).fit(X)
    assert c.sweep_sample is None
    assert (c.labels == expected.labels_).all()
    assert np.allclose(c.centers, expected.cluster_centers_)


def test_above_the_limit_the_sweep_uses_a_sample_and_labels_every_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "SWEEP_LIMIT", 1500)  # the real limit, scaled down to test speed
    X, truth = blobs(6000, 16, 8, 1)
    c = choose_k(X, 5, 12, seed=7)
    assert c.sweep_sample == 1500 and c.labels.shape == (6000,)
    assert c.k == 8 and adjusted_rand_score(truth, c.labels) > 0.99
    again = choose_k(X, 5, 12, seed=7)
    assert (again.labels == c.labels).all()  # seeded: same sample, same fits
    # The final fit is a real fit to all points: each point sits with its nearest centre.
    nearest = np.argmin(((X[:, None, :] - c.centers[None]) ** 2).sum(-1), axis=1)
    assert (nearest == c.labels).mean() > 0.999


def test_capped_distinct_count() -> None:
    X = np.repeat(np.arange(30, dtype=np.float32)[:, None], 4, axis=1).repeat(5, axis=0)
    assert count_distinct(X) == 30
    assert count_distinct(X, at_most=21) == 21
    assert count_distinct(X, at_most=100) == 30
    X4, _ = blobs(40, 3, 2, 2)
    dup = np.repeat(X4[:3], 20, axis=0)
    assert choose_k(dup, 5, 20).k <= 2  # 3 distinct points: k <= 2
