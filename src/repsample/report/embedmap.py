"""The 2-D map: each group's embeddings projected to the plane, sampled when there are too many."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from repsample.config import PROJECTIONS
from repsample.errors import missing_extra
from repsample.params import check_choice
from repsample.report.gather import Item, ReportGroup

MAX_POINTS = 2000


@dataclass(frozen=True)
class MapPoints:
    """Points scaled to [0, 1]^2, with what each one is."""

    xy: np.ndarray  # (m, 2)
    items: list[Item]
    method: str  # "PCA" or "UMAP"
    total: int  # valid images with a vector; len(items) may be fewer (sampled)


def check_projection(method: str) -> None:
    """Refuse, before any work, a projection that is unknown or whose package is missing (umap:
    umap-learn, an optional extra; auto falls back to PCA without it)."""
    check_choice("projection", method, PROJECTIONS)
    if method == "umap" and importlib.util.find_spec("umap") is None:
        raise missing_extra("umap-learn", "umap")


def project_group(
    group: ReportGroup,
    vectors: dict[str, np.ndarray],
    seed: int,
    method: str = "auto",
    max_points: int = MAX_POINTS,
) -> MapPoints | None:
    """Project the group's embedded images; None when fewer than two have a vector."""
    usable = [i for i in group.items if i.status != "error" and i.hash in vectors]
    if len(usable) < 2:
        return None
    shown = _sample(usable, max_points, seed)
    X = np.stack([vectors[i.hash] for i in shown]).astype(np.float64)
    xy, name = _project(X, seed, method)
    return MapPoints(_unit_square(xy), shown, name, len(usable))


def _sample(items: list[Item], max_points: int, seed: int) -> list[Item]:
    """All selected images (up to half the points), the rest a seeded sample of the others:
    a proportional sample would leave only a handful of selected images to look at."""
    if len(items) <= max_points:
        return items
    rng = np.random.default_rng(seed)
    chosen = [i for i in items if i.status == "selected"]
    others = [i for i in items if i.status != "selected"]
    if len(chosen) > max_points // 2:
        chosen = [chosen[j] for j in sorted(rng.choice(len(chosen), max_points // 2, replace=False))]
    room = min(len(others), max_points - len(chosen))
    others = [others[j] for j in sorted(rng.choice(len(others), room, replace=False))]
    return others + chosen  # selected last, so they are drawn on top


def _project(X: np.ndarray, seed: int, method: str) -> tuple[np.ndarray, str]:
    if method in ("auto", "umap") and len(X) >= 10:
        try:
            import umap  # optional: nicer maps, slower
        except ImportError:
            if method == "umap":  # check_projection found it, but it does not import
                raise missing_extra("umap-learn", "umap") from None
        else:
            reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(X) - 1))
            xy: np.ndarray = np.asarray(reducer.fit_transform(X), dtype=np.float64)
            return xy, "UMAP"
    return pca_2d(X), "PCA"


def pca_2d(X: np.ndarray) -> np.ndarray:
    """The first two principal components (deterministic signs: largest loading positive)."""
    from scipy.linalg import eigh

    centred = X - X.mean(axis=0)
    n, d = centred.shape
    # The top two eigenvectors of the smaller of the d x d covariance and the n x n Gram matrix,
    # not a full SVD: 0.1 s instead of 6 s at 2,000 x 1280, 10 ms at 200 x 1280.
    if n < d:
        _, u = eigh(centred @ centred.T, subset_by_index=[max(0, n - 2), n - 1])
        components = (centred.T @ u[:, ::-1]).T
        norms = np.linalg.norm(components, axis=1, keepdims=True)
        components = np.divide(components, norms, out=np.zeros_like(components), where=norms > 0)
    else:
        _, vectors = eigh(centred.T @ centred, subset_by_index=[max(0, d - 2), d - 1])
        components = vectors[:, ::-1].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    xy: np.ndarray = centred @ (components * signs[:, None]).T
    if xy.shape[1] < 2:  # a single feature: put everything on one line
        xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    return xy


def _unit_square(xy: np.ndarray) -> np.ndarray:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    out: np.ndarray = (xy - lo) / span
    return out
