"""Plan: which images the pages show, so thumbnails are made for exactly those and no others."""

from __future__ import annotations

from dataclasses import dataclass

from repsample.report.gather import Item, ReportGroup, RunData
from repsample.report.optional_sections import check_items


@dataclass(frozen=True)
class Caps:
    """How much the pages show; the caps keep report.html light at any dataset size."""

    sheet: int = 30
    """Selected thumbnails per cluster on the main page; a group's own page shows them all."""
    strip: int = 12
    """Not-kept thumbnails per cluster."""
    errors: int = 200
    """Failed files listed per group (all are in manifest.csv)."""
    check_rows: int = 200
    """Findings of check.csv shown per kind (duplicate, leak, ...); all are in check.csv."""


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


def needs_group_page(group: ReportGroup, caps: Caps) -> bool:
    return any(len(kept_in_order(items)) > caps.sheet for items in group.clusters().values())


def shown_items(run: RunData, caps: Caps) -> list[Item]:
    """Every image any page shows as a thumbnail: all selected ones (group pages show them all,
    the main page a prefix) and the capped not-kept strips."""
    out: list[Item] = []
    for group in run.groups:
        for items in group.clusters().values():
            out.extend(kept_in_order(items))
            out.extend(strip(items, caps.strip))
    out.extend(check_items(run, caps.check_rows))
    return out
