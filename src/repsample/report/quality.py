"""The image quality section: per issue type (hygiene.quality.CHECKS), how many images have it,
how many of those were kept or made not eligible (--drop-issues), its rule, and a small gallery of
its worst cases.

Read from the manifest's quality columns and ``issues`` (output.layout.QUALITY_FIELDS,
ISSUE_TYPES) and run.json's check.quality.group_normal. A manifest written before the checks has
no quality scores: the section is left out, as the other optional sections are.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from repsample.hygiene.quality import CHECKS, MINORITY, Check
from repsample.output.layout import ISSUE_TYPES
from repsample.report.gather import Item, RunData
from repsample.report.html import Thumbs, esc, score_text, table

TITLE = "Image quality"


def present(run: RunData) -> bool:
    """Whether the manifest has quality scores (one written since the checks were added)."""
    return any(item.quality or item.issues for g in run.groups for item in g.items)


def flagged(run: RunData) -> dict[str, list[Item]]:
    """Per issue type (CHECKS' order), the images that have it, worst first: farthest, by rank,
    from the middle of the run's images on the check's score (either tail, so odd_size's too
    small and too large both count), then by path."""
    items = [i for g in run.groups for i in g.items]
    out = {}
    for check in CHECKS:
        values = sorted(v for i in items if (v := i.quality.get(check.score)) is not None)
        hits = [i for i in items if check.name in i.issues]
        out[check.name] = sorted(hits, key=lambda i: (-_extremity(i.quality.get(check.score), values),
                                                      i.path))
    return out


def shown_items(run: RunData, cap: int) -> list[Item]:
    """The images the section shows as thumbnails (cap per issue type), for the thumbnail plan."""
    if not present(run):
        return []
    return [item for hits in flagged(run).values() for item in hits[:cap]]


def section(run: RunData, thumbs: Thumbs, cap: int) -> str:
    by_issue = flagged(run)
    measured = sum(bool(i.quality) for g in run.groups for i in g.items)
    parts = [f'<section class="card" id="quality"><h2>{TITLE}</h2>', _normal_note(run)]
    if not any(by_issue.values()):
        parts.append(f'<p class="muted">No image quality issue among the {measured} measured '
                     "images.</p></section>")
        return "".join(parts)
    parts.append(f'<p class="muted">{measured} images measured. A flagged image stays eligible '
                 "unless --drop-issues names one of its issues (manifest.csv's reason then names "
                 "it).</p>")
    parts.append(_counts(by_issue))
    for check in CHECKS:
        hits = by_issue[check.name]
        if hits:
            parts.append(_gallery(check, hits, thumbs, cap))
    parts.append("</section>")
    return "".join(parts)


def _extremity(value: float | None, ordered: Sequence[float]) -> float:
    """How far a score lies from the run's median, as a share of the images (0 to 0.5)."""
    if value is None or not ordered:
        return -1.0  # unmeasured: last
    below = bisect.bisect_left(ordered, value)
    equal = bisect.bisect_right(ordered, value) - below
    return abs((below + equal / 2) / len(ordered) - 0.5)


def _counts(by_issue: dict[str, list[Item]]) -> str:
    rows = []
    for check in CHECKS:
        hits = by_issue[check.name]
        link = f'<a href="#quality-{esc(check.name)}">{esc(check.name)}</a>' if hits else esc(check.name)
        rows.append((link, check.rule, len(hits), sum(i.status == "selected" for i in hits),
                     sum(i.reason in ISSUE_TYPES for i in hits)))
    # Not eligible for any dropped issue: an image set aside as dark counts under grayscale too.
    headers = ("issue", "rule", "images", "of which selected", "not eligible (--drop-issues)")
    return table(headers, rows, numeric=(2, 3, 4), raw=(0,))


def _gallery(check: Check, hits: list[Item], thumbs: Thumbs, cap: int) -> str:
    figures = "".join(
        thumbs.figure(i, i.status == "selected",
                      caption=f"{i.group} · {check.score} {score_text(i.quality.get(check.score)) or '?'}")
        for i in hits[:cap])
    more = (f'<p class="muted">{len(hits) - cap} more not shown; all are in manifest.csv '
            "(column issues).</p>") if len(hits) > cap else ""
    return (f'<h3 id="quality-{esc(check.name)}">{esc(check.name.replace("_", " ").capitalize())} '
            f'({len(hits)})</h3><p class="muted">{esc(check.rule)}; worst first.</p>'
            f'<div class="sheet">{figures}</div>{more}')


def _normal_note(run: RunData) -> str:
    """run.json's check.quality.group_normal: checks a group's majority switched off there."""
    check: Any = run.record.data.get("check")
    quality: Any = check.get("quality") if isinstance(check, dict) else None
    normal: Any = quality.get("group_normal") if isinstance(quality, dict) else None
    if not isinstance(normal, dict) or not normal:
        return ""
    groups = "; ".join(f"{name}: {', '.join(map(str, issues))}" for name, issues in sorted(normal.items())
                       if isinstance(issues, list) and issues)
    if not groups:
        return ""
    return (f'<p class="note">Checks switched off in a group because more than {MINORITY:.0%} of '
            f"its images share the property (that group's normal, not a fault): {esc(groups)}.</p>")
