"""Leaks: the same picture (exact or near) in two splits, e.g. ``train/...`` and ``test/...``.

A group's split is the first component of its path (``train/Healthy`` -> ``train``). A group
directly under INPUT (``Healthy``, or ``.``) has no split, and a dataset with fewer than two
splits has no leaks at all: its cross-group duplicates are reported as such instead.

This module is also the one reader of what a split's name means: --drop-leaks drops leaks from
the train split, and evaluate's linear probe trains there and tests on a held-out split.
"""

from __future__ import annotations

from collections.abc import Iterable

TRAIN_SPLITS = ("train", "training")
"""Split names that hold training data (case-insensitive)."""
HELD_OUT_SPLITS = ("test", "testing", "val", "valid", "validation")
"""Split names of held-out data (case-insensitive), in the order the probe prefers them: a final
test split before a validation one."""


def split_of(group: str) -> str | None:
    parts = group.split("/", 1)
    return parts[0] if len(parts) == 2 else None


def dataset_splits(groups: Iterable[str]) -> list[str]:
    """The splits of a dataset, sorted; empty when it has fewer than two (nothing can leak)."""
    splits = sorted({s for g in groups if (s := split_of(g)) is not None})
    return splits if len(splits) >= 2 else []


def is_train_split(split: str | None) -> bool:
    return split is not None and split.lower() in TRAIN_SPLITS


def train_split(splits: Iterable[str]) -> str | None:
    """The training split among these names (the first in sorted order if several), or None."""
    return next((s for s in sorted(splits) if is_train_split(s)), None)


def held_out_split(splits: Iterable[str]) -> str | None:
    """The held-out split among these names, by HELD_OUT_SPLITS' preference, or None."""
    by_name = {s.lower(): s for s in sorted(splits, reverse=True)}  # the first sorted name wins
    return next((by_name[name] for name in HELD_OUT_SPLITS if name in by_name), None)
