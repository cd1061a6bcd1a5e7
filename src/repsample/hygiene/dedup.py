"""Dedup inside a group: near-duplicate images count once, one member stays eligible.

Greedy leaders in path order: each content either joins the most similar earlier leader it is a
near-duplicate of, or becomes a leader itself. So every duplicate is within the threshold of the
image it is marked a duplicate of (no chains A~B~C that make A and C "duplicates"), and the
choice is deterministic: the first path of a set is the one kept. Images kept from an earlier
selection (``--keep``) lead first and are never marked duplicates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence


def group_duplicates(
    files: Sequence[int],
    content: Sequence[int],
    neighbours: Mapping[int, Sequence[tuple[int, float]]],
    kept: Collection[int] = (),
) -> dict[int, tuple[int, float]]:
    """{file: (the file it duplicates, their similarity)} for the files of one group.

    files: the group's file numbers in path order; content[f]: f's content number (-1 unreadable);
    neighbours[c]: (content, similarity) pairs above the threshold.
    """
    first_file: dict[int, int] = {}
    for f in sorted(files, key=lambda f: f not in kept):  # stable: path order within each part
        c = content[f]
        if c >= 0:
            first_file.setdefault(c, f)
    leaders: dict[int, int] = {}  # content -> its keeper file
    out: dict[int, tuple[int, float]] = {}
    for c, f in first_file.items():
        best = None if f in kept else _best_leader(neighbours.get(c, ()), leaders)
        if best is None:
            leaders[c] = f
        else:
            out[f] = best
    for f in files:
        c = content[f]
        if c < 0 or f in kept or first_file[c] == f:
            continue
        out[f] = out.get(first_file[c], (first_file[c], 1.0))  # an exact copy follows its first
    return out


def _best_leader(
    candidates: Sequence[tuple[int, float]], leaders: Mapping[int, int]
) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    for c, sim in candidates:
        keeper = leaders.get(c)
        if keeper is not None and (best is None or (-sim, keeper) < (-best[1], best[0])):
            best = (keeper, sim)
    return best
