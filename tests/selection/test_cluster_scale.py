"""Clustering that scales: the k sweep on a sample above SWEEP_LIMIT, the original's fits below."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import repsample.selection.cluster as cluster
from repsample.selection.cluster import Clustering, choose_k, count_distinct


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


@pytest.mark.parametrize("n, sample", [(700, 3000), (1200, 500)])
def test_shared_silhouette_distances_match_sklearn(n: int, sample: int) -> None:
    """One distance matrix for every k gives sklearn's own silhouette_score, sampled or not."""
    from sklearn.metrics import silhouette_score

    X, _ = blobs(n, 10, 6, 3)
    c = choose_k(X, 3, 8, seed=5, silhouette_sample=sample)
    for k, score in c.silhouettes.items():
        labels = KMeans(n_clusters=k, random_state=5).fit(X).labels_
        expected = silhouette_score(X, labels, sample_size=sample if n > sample else None,
                                    random_state=5)
        assert score == pytest.approx(expected, rel=1e-5)


def test_clustering_round_trips_through_bytes() -> None:
    X, _ = blobs(300, 5, 4, 4)
    c = choose_k(X, 2, 6, seed=1, silhouette_sample=200)
    back = Clustering.from_bytes(c.to_bytes())
    assert back.k == c.k and (back.labels == c.labels).all()
    assert np.array_equal(back.centers, c.centers)
    assert back.silhouettes == c.silhouettes and back.silhouette_sample == 200
