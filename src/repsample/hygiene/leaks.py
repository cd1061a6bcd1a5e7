"""Leaks: the same picture (exact or near) in two splits, e.g. ``train/...`` and ``test/...``.

A group's split is the first component of its path (``train/Healthy`` -> ``train``). A group
directly under INPUT (``Healthy``, or ``.``) has no split, and a dataset with fewer than two
splits has no leaks at all: its cross-group duplicates are reported as such instead.
"""

from __future__ import annotations

from collections.abc import Iterable

TRAIN_SPLITS = ("train", "training")
"""Split names --drop-leaks treats as training data (case-insensitive)."""


def split_of(group: str) -> str | None:
    parts = group.split("/", 1)
    return parts[0] if len(parts) == 2 else None


def dataset_splits(groups: Iterable[str]) -> list[str]:
    """The splits of a dataset, sorted; empty when it has fewer than two (nothing can leak)."""
    splits = sorted({s for g in groups if (s := split_of(g)) is not None})
    return splits if len(splits) >= 2 else []


def is_train_split(split: str | None) -> bool:
    return split is not None and split.lower() in TRAIN_SPLITS
