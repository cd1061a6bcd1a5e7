"""Allocate: split a group's budget across its clusters, exactly, never more than a cluster holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from repsample.registry import Registry

Weighting = Callable[[np.ndarray], np.ndarray]

ALLOCATIONS: Registry[Weighting] = Registry("allocation")
ALLOCATIONS.register("equal", lambda sizes: np.ones(len(sizes)))  # the original's
ALLOCATIONS.register("proportional", lambda sizes: sizes.astype(np.float64))
ALLOCATIONS.register("sqrt", lambda sizes: np.sqrt(sizes.astype(np.float64)))  # in between


NO_QUOTAS = "none"
"""``--allocation none``: clusters set no quotas, picks come from the whole group; the clusters
still describe them (manifest, report). Not a split of a budget, so not in ALLOCATIONS."""


def list_allocations() -> list[str]:
    """The schemes that split a budget across clusters (and, with --total, across groups)."""
    return ALLOCATIONS.names()


def list_selection_allocations() -> list[str]:
    """What ``--allocation`` takes: a splitting scheme, or ``none`` for no cluster quotas."""
    return [*ALLOCATIONS.names(), NO_QUOTAS]


def allocate(sizes: Sequence[int] | np.ndarray, budget: int, scheme: str = "equal") -> np.ndarray:
    """Images to take from each cluster; they sum to exactly min(budget, sum(sizes)).

    Shares follow the scheme's weights; the integer remainder goes to the largest fractional
    shares (ties: larger cluster, then lower index); what a cluster cannot fill is handed on to
    the clusters that still have room, by the same rule. When the budget covers every non-empty
    cluster, each gets at least one image (a small cluster may be a rare mode).
    """
    caps = np.asarray(sizes, dtype=np.int64)
    quotas = _shares(caps, np.zeros(len(caps), dtype=np.int64), budget, scheme)
    nonempty = caps > 0
    if budget >= nonempty.sum() and (quotas[nonempty] == 0).any():
        quotas = _shares(caps, nonempty.astype(np.int64), budget, scheme)
    return quotas


def _shares(caps: np.ndarray, start: np.ndarray, budget: int, scheme: str) -> np.ndarray:
    """Fill ``start`` up to min(budget, caps.sum()) by the scheme's weights, capped per cluster."""
    weigh = ALLOCATIONS.get(scheme)
    quotas: np.ndarray = np.array(start, dtype=np.int64)
    left = min(int(budget), int(caps.sum())) - int(quotas.sum())
    while left > 0:
        open_ = np.flatnonzero(quotas < caps)
        weights = np.asarray(weigh(caps[open_]), dtype=np.float64)
        shares = left * weights / weights.sum()
        give = np.floor(shares).astype(np.int64)
        remainder = left - int(give.sum())
        if remainder:
            frac = shares - give
            order = np.lexsort((open_, -caps[open_], -frac))  # last key sorts first
            give[order[:remainder]] += 1
        room = caps[open_] - quotas[open_]
        give = np.minimum(give, room)
        quotas[open_] += give
        left -= int(give.sum())
    return quotas
