"""A group's section: how k was chosen, cluster sizes, the map, contact sheets, failed files."""

from __future__ import annotations

from repsample.report import svg
from repsample.report.embedmap import MapPoints
from repsample.report.gather import Item, ReportGroup
from repsample.report.html import Thumbs, esc, table
from repsample.report.plan import Caps, kept_in_order, needs_group_page, strip


def group_section(index: int, group: ReportGroup, points: MapPoints | None, map_note: str,
                  thumbs: Thumbs, caps: Caps, full: bool = False) -> str:
    """The section for one group; ``full`` (its own page) lifts the cap on contact sheets."""
    valid = len(group.items) - len(group.errors)
    facts = [f"{len(group.items)} images", f"{len(group.errors)} failed", f"{len(group.selected)} selected",
             f"k = {group.k}" if group.k else "not clustered"]
    # From the hygiene pass (manifest duplicate_of / leak_with); details in the duplicates section.
    dups, leaks = sum(bool(i.duplicate_of) for i in group.items), sum(bool(i.leak_with) for i in group.items)
    facts += [f"{dups} duplicates"] * bool(dups) + [f"{leaks} leaked to another split"] * bool(leaks)
    parts = [f'<section class="card" id="g{index}"><h2>{esc(group.name)}</h2>',
             f'<div class="muted">{esc(" · ".join(facts))}</div>']
    if group.note:
        parts.append(f'<div class="note">{esc(group.note)}</div>')
    parts.append('<div class="charts">')
    parts.append(_silhouette(group))
    if valid:
        parts.append(_sizes(group))
    parts.append(_map(points, map_note))
    parts.append("</div>")
    if not full and needs_group_page(group, caps):
        parts.append(f'<p>Each cluster below shows its {caps.sheet} best-ranked selected images. '
                     f'<a href=".report/groups/g{index}.html">All {len(group.selected)} selected '
                     "images of this group</a>.</p>")
    for label, items in group.clusters().items():
        parts.append(_cluster(label, items, thumbs, None if full else caps.sheet, caps.strip))
    if group.errors:
        parts.append(_errors(group.errors, caps.errors))
    parts.append("</section>")
    return "".join(parts)


def _figure(title: str, body: str) -> str:
    return f"<figure><figcaption>{esc(title)}</figcaption>{body}</figure>"


def _silhouette(group: ReportGroup) -> str:
    if not group.silhouettes:
        return _figure("Silhouette against k", '<p class="muted">No k was tried (too few distinct '
                       "images to cluster).</p>")
    sample = f" (on a sample of {group.silhouette_sample})" if group.silhouette_sample else ""
    chart = svg.line_chart(group.silhouettes, group.k or None, "k (clusters)", "silhouette")
    return _figure(f"Silhouette against k{sample}: higher is better", chart)


def _sizes(group: ReportGroup) -> str:
    clusters = group.clusters()
    total = sum(len(v) for v in clusters.values()) or 1
    kept = len(group.selected) or 1
    labels = [f"#{c}" if c >= 0 else "-" for c in clusters]
    share_all = [len(v) / total for v in clusters.values()]
    share_kept = [sum(i.status == "selected" for i in v) / kept for v in clusters.values()]
    chart = svg.paired_bars(labels, share_all, share_kept, [svg.color(c) for c in clusters],
                            ("share of the group", "share of the selection"))
    return _figure("Cluster sizes: group against selection", chart)


def _map(points: MapPoints | None, note: str) -> str:
    if points is None:
        return _figure("Map of the embeddings", f'<p class="muted">{esc(note)}</p>')
    chart = svg.scatter(points.xy, [i.cluster for i in points.items],
                        [i.status == "selected" for i in points.items])
    shown = len(points.items)
    sample = f", {shown} of {points.total} points drawn" if shown < points.total else ""
    return _figure(f"Map ({points.method}{sample}); selected images ringed", chart)


def _cluster(label: int, items: list[Item], thumbs: Thumbs, sheet_cap: int | None,
             strip_cap: int) -> str:
    kept = kept_in_order(items)
    colour = svg.color(label)
    name = f"Cluster {label}" if label >= 0 else "Unclustered"
    share = f"{len(kept) / len(items):.0%}" if items else "0%"
    parts = [f'<div class="cluster"><h3><span class="swatch" style="background:{colour}"></span>'
             f"{esc(name)} <span class=\"muted\">· {len(items)} images, {len(kept)} selected "
             f"({share})</span></h3>"]
    shown = kept if sheet_cap is None else kept[:sheet_cap]
    if shown:
        more = f", best {len(shown)} of {len(kept)} shown" if len(shown) < len(kept) else ""
        parts.append(f'<div class="sub">Selected, closest to the centre first{more}</div>')
        parts.append('<div class="sheet">' + "".join(thumbs.figure(i, True, colour) for i in shown)
                     + "</div>")
    left_out = strip(items, strip_cap)
    if left_out:
        not_kept = len(items) - len(kept)
        parts.append(f'<div class="sub">Not kept: {len(left_out)} of {not_kept}, nearest to farthest '
                     "from the centre</div>")
        parts.append('<div class="strip">' + "".join(thumbs.figure(i) for i in left_out) + "</div>")
    parts.append("</div>")
    return "".join(parts)


def _errors(errors: list[Item], cap: int) -> str:
    rows = [(i.path, i.error or "unknown error") for i in errors[:cap]]
    more = (f'<p class="muted">{len(errors) - cap} more in manifest.csv (status = error).</p>'
            if len(errors) > cap else "")
    return f"<h3>Files that failed ({len(errors)})</h3>" + table(("file", "why"), rows) + more
