"""Plan: which images the report shows as pictures, within a budget that holds at any scale.

report.html carries its pictures inside, so their number sets its size. Every group gets an equal
share of Caps.thumbnails (at least Caps.group_min): its most unusual images when the manifest has
outlier scores, then its kept images (best-ranked first, cluster by cluster in turn), then a
spread of what it did not keep. Every image, pictured or not, is listed by name in the group's
image list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repsample.report import quality
from repsample.report.gather import Item, ReportGroup, RunData
from repsample.report.optional_sections import check_items

OUTLIER = "outlier_score"


@dataclass(frozen=True)
class Caps:
    """How much the page shows; the caps keep report.html light at any dataset size."""

    thumbnails: int = 3000
    """Pictures in the page, all groups together (each one a few kB inside the file)."""
    group_min: int = 40
    """Pictures per group whatever the number of groups."""
    sheet: int = 30
    """Kept pictures per cluster at most."""
    strip: int = 12
    """Not-kept pictures per cluster at most."""
    outliers: int = 12
    """Pictures in a group's outlier gallery (when the manifest has outlier scores)."""
    map_named: int = 120
    """Map points per group that name and link their image; the others are plain dots."""
    errors: int = 200
    """Failed files listed per group (all are in manifest.csv and the group's image list)."""
    check_rows: int = 50
    """Findings of check.csv shown per kind (duplicate, leak, ...); all are in check.csv."""
    issues: int = 12
    """Pictures per image quality issue type (blurry, dark, ...); all are in manifest.csv."""


@dataclass(frozen=True)
class GroupPlan:
    """The pictures one group shows."""

    kept: dict[int, list[Item]]  # per cluster label, best-ranked first
    others: dict[int, list[Item]]  # per cluster label, nearest to farthest from the centre
    outliers: list[Item]  # most unusual first


def kept_in_order(items: list[Item]) -> list[Item]:
    """The cluster's selected images, closest to the centre (rank 1) first."""
    chosen = [i for i in items if i.status == "selected"]
    return sorted(chosen, key=lambda i: (i.rank if i.rank is not None else 1 << 30, i.path))


def strip(items: list[Item], cap: int) -> list[Item]:
    """Up to cap images the cluster did not keep, evenly spaced from nearest to farthest from
    its centre, so the strip spans what was left out rather than its most typical corner."""
    others = sorted((i for i in items if i.status == "not_selected"),
                    key=lambda i: (i.distance if i.distance is not None else float("inf"), i.path))
    if len(others) <= cap:
        return others
    if cap <= 1:
        return others[:cap]
    step = (len(others) - 1) / (cap - 1)
    return [others[round(j * step)] for j in range(cap)]


def share(sizes: Sequence[int], limit: int) -> list[int]:
    """How many of each list to take, one from each in turn, up to limit in all."""
    taken = [0] * len(sizes)
    left = max(0, limit)
    while left:
        moved = False
        for i, size in enumerate(sizes):
            if left and taken[i] < size:
                taken[i] += 1
                left -= 1
                moved = True
        if not moved:
            break
    return taken


def outliers(run: RunData, group: ReportGroup, cap: int) -> list[Item]:
    """The group's most unusual images: those set aside as outliers first, then by score; at
    most a tenth of the group (or 3), unless more were set aside, and never more than cap."""
    if OUTLIER not in run.score_columns:
        return []
    scored = []
    for item in group.items:
        scores = run.scores_of(item)
        value = scores.get(OUTLIER) if scores is not None else None
        if item.status != "error" and value is not None and scores is not None:
            scored.append((scores.reason != "outlier", -value, item.path, item))
    set_aside = sum(not entry[0] for entry in scored)
    return [entry[-1] for entry in sorted(scored)[:min(cap, max(3, len(scored) // 10, set_aside))]]


def plan_group(run: RunData, group: ReportGroup, caps: Caps, budget: int) -> GroupPlan:
    gallery = outliers(run, group, min(caps.outliers, budget // 4))
    rest = budget - len(gallery)
    clusters = group.clusters()
    ranked = [kept_in_order(items)[:caps.sheet] for items in clusters.values()]
    left_out = [min(caps.strip, sum(i.status == "not_selected" for i in items))
                for items in clusters.values()]
    # Kept images first (two thirds of the share, more when few were left out), then the rest.
    kept_total = min(sum(map(len, ranked)), max(rest - sum(left_out), rest * 2 // 3))
    kept_counts = share([len(r) for r in ranked], kept_total)
    other_counts = share(left_out, rest - sum(kept_counts))
    labels = list(clusters)
    return GroupPlan(
        kept={c: ranked[n][:kept_counts[n]] for n, c in enumerate(labels)},
        others={c: strip(clusters[c], other_counts[n]) for n, c in enumerate(labels)},
        outliers=gallery,
    )


def plan(run: RunData, caps: Caps) -> list[GroupPlan]:
    budget = max(caps.group_min, caps.thumbnails // max(1, len(run.groups)))
    return [plan_group(run, group, caps, budget) for group in run.groups]


def shown_items(run: RunData, plans: Sequence[GroupPlan], caps: Caps) -> list[Item]:
    """Every image the page shows as a picture, for the thumbnail maker."""
    out: list[Item] = []
    for p in plans:
        out.extend(p.outliers)
        for items in p.kept.values():
            out.extend(items)
        for items in p.others.values():
            out.extend(items)
    out.extend(check_items(run, caps.check_rows))
    out.extend(quality.shown_items(run, caps.issues))
    return out
