"""The hygiene pass: exact, near and cross-split duplicates of a dataset, from its embeddings.

Stages: contents by hash (exact.py), pairs of contents above the threshold (near.py), then per
group the duplicates dedup drops (dedup.py), and per image its closest match in another group of
the same split (``cross_group``) or in another split (``leak``, leaks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from repsample.hygiene.dedup import group_duplicates
from repsample.hygiene.exact import content_ids
from repsample.hygiene.leaks import dataset_splits, is_train_split, split_of
from repsample.hygiene.near import Pairs, candidate_pairs
from repsample.progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.8
"""Cosine similarity of embeddings from which a pair is a near-duplicate candidate, then confirmed
by perceptual hash (confirm.py); tuned for efficientnet-lite0 on bench/duplicates.py, see
docs/benchmarks.md."""


@dataclass(frozen=True)
class Match:
    """Another image that one image duplicates: its file number and their cosine similarity."""

    other: int
    similarity: float
    exact: bool


@dataclass(frozen=True)
class Findings:
    """What the pass found, by file number (the order of ``paths``)."""

    paths: list[str]  # relative to INPUT
    groups: list[str]
    errors: dict[int, str]  # unreadable files
    duplicates: dict[int, Match]  # same group: dedup keeps ``other``, not this one
    cross_group: dict[int, Match]  # another group of the same split (or both without a split)
    leaks: dict[int, Match]  # another split
    splits: list[str]
    threshold: float
    contents: int  # distinct readable contents searched
    pairs: int  # pairs of distinct contents confirmed as near-duplicates
    near_searched: bool = True  # False: only exact copies were looked for
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _repeated: dict[int, float] = field(default_factory=dict, repr=False, compare=False)

    def file(self, path: str) -> int:
        if not self._index:
            self._index.update((p, i) for i, p in enumerate(self.paths))
        return self._index[path]

    def excluded(self, path: str, dedup: bool, drop_leaks: bool) -> bool:
        """Whether select must not pick this image: a duplicate (with dedup), or a train image
        that leaks into another split (with drop_leaks)."""
        f = self.file(path)
        if dedup and f in self.duplicates:
            return True
        return drop_leaks and f in self.leaks and is_train_split(split_of(self.groups[f]))

    def manifest_fields(self, path: str) -> dict[str, str]:
        """duplicate_of: the image of the same group this one repeats (the one dedup keeps);
        duplicate_similarity: the cosine similarity of that image, or for the image others repeat
        the closest of them (empty: no duplicate); leak_with: its closest match in another split."""
        f = self.file(path)
        dup, leak = self.duplicates.get(f), self.leaks.get(f)
        if self.duplicates and not self._repeated:
            for m in self.duplicates.values():
                self._repeated[m.other] = max(m.similarity, self._repeated.get(m.other, -1.0))
        similarity = dup.similarity if dup else self._repeated.get(f)
        return {"duplicate_of": self.paths[dup.other] if dup else "",
                "duplicate_similarity": "" if similarity is None else f"{similarity:.6g}",
                "leak_with": self.paths[leak.other] if leak else ""}

    def summary(self) -> dict[str, object]:
        """Counts for the CLI and run.json."""
        leaked: dict[str, int] = {}
        for f in self.leaks:
            split = split_of(self.groups[f]) or ""
            leaked[split] = leaked.get(split, 0) + 1
        return {
            "images": len(self.paths),
            "unreadable": len(self.errors),
            "threshold": self.threshold,
            "distinct_contents": self.contents,
            "near_searched": self.near_searched,
            "near_pairs": self.pairs,
            "duplicates": len(self.duplicates),
            "exact_duplicates": sum(m.exact for m in self.duplicates.values()),
            "near_duplicates": sum(not m.exact for m in self.duplicates.values()),
            "cross_group": len(self.cross_group),
            "splits": self.splits,
            "leaked_images": len(self.leaks),
            "leaked_by_split": dict(sorted(leaked.items())),
        }


def find(
    paths: Sequence[str],
    groups: Sequence[str],
    hashes: Sequence[str | None],
    vectors: Mapping[str, np.ndarray],
    errors: Mapping[int, str],
    threshold: float = DEFAULT_THRESHOLD,
    kept: Collection[int] = (),
    search: Callable[[list[str], np.ndarray], Pairs] | None = None,
    progress: Progress | None = None,
) -> Findings:
    """Run the pass over files given in group order, paths sorted within each group.

    hashes[f]: f's content hash (None when unreadable); vectors: embedding per hash (a hash
    without one is unreadable as an image, and its error is in ``errors``); kept: files an
    earlier selection kept, never marked duplicates. search(hashes, vectors) gives the pairs of
    distinct contents (rows numbered like hashes) that are near-duplicates (pairs.py confirms
    them by pixels); without it, every candidate pair above the threshold is one (near.py).
    """
    usable = [h if h is not None and h in vectors else None for h in hashes]
    content, distinct = content_ids(usable)
    X = np.stack([vectors[h] for h in distinct]) if distinct else np.empty((0, 1), np.float32)
    pairs = (search(distinct, X) if search is not None
             else candidate_pairs(X, threshold, progress=progress))
    neighbours = _neighbours(pairs.first, pairs.second, pairs.similarity)
    logger.info("hygiene: %d files, %d distinct contents, %d near-duplicate pairs",
                len(paths), len(distinct), len(pairs))

    members: dict[str, list[int]] = {}
    for f, g in enumerate(groups):
        members.setdefault(g, []).append(f)
    kept_set = set(kept)
    duplicates: dict[int, Match] = {}
    for files in members.values():
        for f, (other, sim) in group_duplicates(files, content, neighbours, kept_set).items():
            duplicates[f] = Match(other, sim, content[f] == content[other])

    splits = dataset_splits(members)
    cross_group, leaks = _across_groups(groups, content, neighbours, set(splits))
    return Findings(list(paths), list(groups), dict(errors), duplicates, cross_group, leaks, splits,
                    threshold, len(distinct), len(pairs))


def _neighbours(
    first: np.ndarray, second: np.ndarray, sims: np.ndarray
) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {}
    for a, b, s in zip(first.tolist(), second.tolist(), sims.tolist(), strict=True):
        s = min(float(s), 1.0)
        out.setdefault(a, []).append((b, s))
        out.setdefault(b, []).append((a, s))
    return out


def _across_groups(
    groups: Sequence[str],
    content: Sequence[int],
    neighbours: Mapping[int, Sequence[tuple[int, float]]],
    splits: set[str],
) -> tuple[dict[int, Match], dict[int, Match]]:
    """Per image, its best match in another group of its split, and in another split."""
    first_in_group: dict[int, dict[str, int]] = {}  # content -> group -> first file
    for f, (c, g) in enumerate(zip(content, groups, strict=True)):
        if c >= 0:
            first_in_group.setdefault(c, {}).setdefault(g, f)
    if all(len(by_group) == 1 for by_group in first_in_group.values()) and not neighbours:
        return {}, {}
    cross: dict[int, Match] = {}
    leaks: dict[int, Match] = {}
    for f, (c, g) in enumerate(zip(content, groups, strict=True)):
        if c < 0:
            continue
        split = _split(g, splits)
        candidates = [(c, 1.0), *neighbours.get(c, ())]
        for other_c, sim in candidates:
            for h, other in first_in_group[other_c].items():
                if h == g:
                    continue
                other_split = _split(h, splits)
                leaked = split is not None and other_split is not None and other_split != split
                found = leaks if leaked else cross
                best = found.get(f)
                if best is None or (-sim, other) < (-best.similarity, best.other):
                    found[f] = Match(other, sim, other_c == c)
    return cross, leaks


def _split(group: str, splits: set[str]) -> str | None:
    split = split_of(group)
    return split if split in splits else None
