"""Near-duplicate candidates: each content's nearest neighbours whose cosine reaches a threshold.

A near-duplicate of an image is among its very nearest neighbours, so the search asks for each
row's NEIGHBOURS nearest rows (embedding.neighbours: faiss, exact up to 50,000 rows, approximate
and rescored above) instead of every pair above the threshold: on a dataset of look-alikes (one
product shot 20,000 times) the pairs above a threshold grow as n^2, the nearest neighbours as n.
Every similarity reported is exact. bench/duplicates.py measures the candidate recall against
exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repsample.embedding.neighbours import CHUNK, EXACT_UP_TO, search_unit_rows, unit_rows
from repsample.progress import Progress, SilentProgress

NEIGHBOURS = 16
"""Nearest neighbours searched per content. An image with more distinct near-duplicates than
this is still linked to its 16 closest, and through them to the rest of its set."""


@dataclass(frozen=True)
class Pairs:
    """Pairs (first[k], second[k]) of row numbers, first < second, with their similarity."""

    first: np.ndarray  # int64
    second: np.ndarray  # int64
    similarity: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.first)

    def subset(self, mask: np.ndarray) -> Pairs:
        return Pairs(self.first[mask], self.second[mask], self.similarity[mask])

    @staticmethod
    def empty() -> Pairs:
        return Pairs(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


def candidate_pairs(
    X: np.ndarray,
    threshold: float,
    neighbours: int = NEIGHBOURS,
    progress: Progress | None = None,
    exact_up_to: int = EXACT_UP_TO,
) -> Pairs:
    """Each row's ``neighbours`` nearest other rows with cosine similarity >= threshold, as
    pairs (each once, first < second)."""
    n = len(X)
    if n < 2:
        return Pairs.empty()
    k = min(neighbours, n - 1) + 1  # + 1: a row finds itself
    bar = (progress or SilentProgress()).stage("check", math.ceil(n / CHUNK))
    firsts, seconds, sims = [], [], []
    for start, similarity, found in search_unit_rows(unit_rows(X), k, exact_up_to):
        rows = np.arange(start, start + len(found))[:, None]
        keep = (found >= 0) & (found != rows) & (similarity >= threshold)
        a, b = np.broadcast_to(rows, found.shape)[keep], found[keep]
        firsts.append(np.minimum(a, b))
        seconds.append(np.maximum(a, b))
        sims.append(similarity[keep])
        bar.advance()
    bar.close()
    first, second = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    similarity = np.minimum(np.concatenate(sims).astype(np.float32), 1.0)
    _, once = np.unique(first * n + second, return_index=True)  # a pair found from both ends
    return Pairs(first[once], second[once], similarity[once])


def confirmed(pairs: Pairs, keep: Callable[[np.ndarray, np.ndarray], np.ndarray],
              chunk: int = 1 << 16) -> Pairs:
    """The pairs that ``keep(first, second) -> mask`` confirms, asked a chunk at a time."""
    mask = np.zeros(len(pairs), bool)
    for start in range(0, len(pairs), chunk):
        part = slice(start, start + chunk)
        mask[part] = keep(pairs.first[part], pairs.second[part])
    return pairs.subset(mask)
