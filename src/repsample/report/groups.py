"""A group's section: how k was chosen (and how much that mattered), cluster sizes, the map, the
outliers, each cluster's kept and not-kept pictures, and every image of the group in a list."""

from __future__ import annotations

from repsample.report import svg
from repsample.report.embedmap import MapPoints
from repsample.report.evaluation import Figure
from repsample.report.gather import Item, ReportGroup, RunData
from repsample.report.html import Thumbs, esc, score_text, status_text, table
from repsample.report.lists import image_list
from repsample.report.plan import OUTLIER, Caps, GroupPlan, kept_in_order

# Kaufman and Rousseeuw, who introduced the silhouette ("Finding Groups in Data", 1990), read an
# average silhouette of 0.25 or less as "no substantial structure has been found": below it the
# clusters are slices of a continuum, and which k wins is close to chance.
WEAK_SILHOUETTE = 0.25


def is_weak(group: ReportGroup) -> bool:
    silhouettes = group.result.silhouettes
    return bool(silhouettes) and max(silhouettes.values()) < WEAK_SILHOUETTE


def group_section(index: int, group: ReportGroup, points: MapPoints | None, map_note: str,
                  thumbs: Thumbs, caps: Caps, shown: GroupPlan, mmd: Figure | None = None,
                  opened: bool = False) -> str:
    """The section for one group, collapsible; mmd: its evaluation against random, if any."""
    valid = len(group.items) - len(group.errors)
    k, silhouettes = group.result.k, group.result.silhouettes
    facts = [f"{len(group.items)} images", f"{len(group.selected)} selected",
             f"{len(group.errors)} failed", f"k = {k}" if k else "not clustered"]
    if k in silhouettes:
        facts.append(f"silhouette {silhouettes[k]:.2f}")
    # From the hygiene pass (manifest duplicate_of / leak_with); details in the duplicates section.
    dups, leaks = sum(bool(i.duplicate_of) for i in group.items), sum(bool(i.leak_with) for i in group.items)
    facts += [f"{dups} duplicates"] * bool(dups) + [f"{leaks} leaked to another split"] * bool(leaks)
    badge = ' <span class="pill verdict-none">weak clustering</span>' if is_weak(group) else ""
    parts = [f'<details class="card group" id="g{index}"{" open" if opened else ""}><summary>'
             f'<h2>{esc(group.name)}{badge}</h2><span class="muted">{esc(" · ".join(facts))}'
             "</span></summary>"]
    if group.result.note:
        parts.append(f'<div class="note">{esc(group.result.note)}</div>')
    if is_weak(group):
        parts.append(weak_note(group, mmd))
    parts.append('<div class="charts">')
    parts.append(_silhouette(group))
    if valid:
        parts.append(_sizes(group))
    parts.append(_map(index, points, map_note, thumbs, caps, shown))
    parts.append("</div>")
    if shown.outliers:
        parts.append(_outliers(thumbs, shown.outliers, thumbs.run, group))
    for label, items in group.clusters().items():
        parts.append(_cluster(index, label, items, thumbs, shown))
    if group.errors:
        parts.append(_errors(group.errors, caps.errors))
    parts.append(image_list(index, group, thumbs.run))
    parts.append("</details>")
    return "".join(parts)


def share_gap(group: ReportGroup) -> float | None:
    """Total variation between the group's and the selection's cluster shares (0 = the same)."""
    clusters = group.clusters()
    total, kept = sum(map(len, clusters.values())), len(group.selected)
    if not total or not kept:
        return None
    return 0.5 * sum(abs(len(v) / total - sum(i.status == "selected" for i in v) / kept)
                     for v in clusters.values())


def weak_note(group: ReportGroup, mmd: Figure | None) -> str:
    best = max(group.result.silhouettes.values())
    low = min(group.result.silhouettes.values())
    text = (f"<b>Weak clustering.</b> The best silhouette is {best:.2f}, under {WEAK_SILHOUETTE}: "
            "these images do not fall into well-separated groups (Kaufman and Rousseeuw, who "
            f"introduced the measure, read {WEAK_SILHOUETTE} or less as no substantial structure). "
            f"Every k tried scored between {low:.2f} and {best:.2f}, so k = {group.result.k} was a "
            "close call and the choice matters little: the clusters are slices of a continuum. ")
    gap = share_gap(group)
    why = []
    if gap is not None:
        why.append(f"the selection's cluster shares differ from the group's by {gap:.0%} "
                   "(total variation), so no slice is over- or under-sampled")
    if mmd is not None and mmd.selection is not None and mmd.mean is not None:
        verdict = mmd.verdict(lower_is_better=True)
        versus = {"beats": "closer than", "within": "as close as", "worse": "further than"}.get(
            verdict, "against")
        spread = f" ± {mmd.std:.2g}" if mmd.std is not None else ""
        why.append(f"its distance to the whole group (MMD {mmd.selection:.3g}) is {versus} random "
                   f"subsets of the same size ({mmd.mean:.3g}{spread})")
    if why:
        text += "What keeps the selection representative is not the clusters: " + "; ".join(
            esc(w) for w in why) + "."
    else:
        text += ("Run <code>repsample evaluate OUTPUT</code> to see how the selection compares "
                 "with random subsets.")
    return f'<div class="note weak">{text}</div>'


def _figure(title: str, body: str) -> str:
    return f"<figure><figcaption>{esc(title)}</figcaption>{body}</figure>"


def _silhouette(group: ReportGroup) -> str:
    result = group.result
    if not result.silhouettes:
        return _figure("Silhouette against k", '<p class="muted">No k was tried (too few distinct '
                       "images to cluster).</p>")
    sample = f" (on a sample of {result.silhouette_sample})" if result.silhouette_sample else ""
    chart = svg.line_chart(result.silhouettes, result.k or None, "k (clusters)", "silhouette",
                           reference=(WEAK_SILHOUETTE, f"{WEAK_SILHOUETTE}: weak below"),
                           weak=is_weak(group))
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


def _map(index: int, points: MapPoints | None, note: str, thumbs: Thumbs, caps: Caps,
         shown: GroupPlan) -> str:
    if points is None:
        return _figure("Map of the embeddings", f'<p class="muted">{esc(note)}</p>')
    pictured = {i.path for items in (*shown.kept.values(), *shown.others.values(), shown.outliers)
                for i in items}
    # Pictured images link to their picture; up to the cap, others to the group's image list.
    order = sorted(range(len(points.items)), key=lambda n: points.items[n].path not in pictured)
    named = []
    for n in order[:max(caps.map_named, len(pictured))]:
        item = points.items[n]
        target = f"v{thumbs.uid[item.path]}" if item.path in pictured else f"g{index}-list"
        cluster = f", cluster {item.cluster}" if item.cluster is not None and item.cluster >= 0 else ""
        named.append(svg.Point(n, f"{item.name} ({status_text(item)}{cluster})", target))
    chart = svg.scatter(points.xy, [i.cluster for i in points.items],
                        [i.status == "selected" for i in points.items], named)
    drawn = len(points.items)
    sample = f", {drawn} of {points.total} points drawn" if drawn < points.total else ""
    return _figure(f"Map ({points.method}{sample}); selected images ringed; a point names its image "
                   "and opens it", chart)


def _outliers(thumbs: Thumbs, items: list[Item], run: RunData, group: ReportGroup) -> str:
    set_aside = sum((s := run.scores_of(i)) is not None and s.reason == "outlier" for i in group.items)
    aside = f"; {set_aside} set aside as outliers (shown first)" if set_aside else ""
    figures = []
    for item in items:
        scores = run.scores_of(item)
        value = scores.get(OUTLIER) if scores is not None else None
        figures.append(thumbs.figure(item, item.status == "selected", None,
                                     f"outlier score {score_text(value)}"))
    return (f'<div class="cluster outliers"><h3>Most unusual images</h3><div class="sub">The '
            f"{len(items)} highest outlier scores of the group (higher = more unusual){esc(aside)}."
            f'</div><div class="sheet">{"".join(figures)}</div></div>')


def _cluster(index: int, label: int, items: list[Item], thumbs: Thumbs, shown: GroupPlan) -> str:
    kept = kept_in_order(items)
    colour = svg.color(label)
    name = f"Cluster {label}" if label >= 0 else "Unclustered"
    share = f"{len(kept) / len(items):.0%}" if items else "0%"
    parts = [f'<details class="cluster" id="g{index}-c{label}" open><summary><h3><span class="swatch" '
             f'style="background:{colour}"></span>{esc(name)} <span class="muted">· {len(items)} '
             f"images, {len(kept)} selected ({share})</span></h3></summary>"]
    pictured = shown.kept.get(label, [])
    if kept:
        more = (f", best {len(pictured)} of {len(kept)} shown (all are in the image list below)"
                if len(pictured) < len(kept) else "")
        parts.append(f'<div class="sub">Selected, closest to the centre first{more}</div>')
        parts.append('<div class="sheet">' + "".join(thumbs.figure(i, True, colour) for i in pictured)
                     + "</div>")
    left_out = shown.others.get(label, [])
    not_kept = sum(i.status == "not_selected" for i in items)
    if not_kept:
        spread = (f"{len(left_out)} of {not_kept} shown, spread from nearest to farthest from the "
                  "centre; all are in the image list below" if len(left_out) < not_kept
                  else "nearest to farthest from the centre")
        parts.append(f'<div class="sub">Not kept: {spread}</div>')
        parts.append('<div class="strip">' + "".join(thumbs.figure(i) for i in left_out) + "</div>")
    parts.append("</details>")
    return "".join(parts)


def _errors(errors: list[Item], cap: int) -> str:
    rows = [(i.path, i.error or "unknown error") for i in errors[:cap]]
    more = (f'<p class="muted">{len(errors) - cap} more in manifest.csv (status = error).</p>'
            if len(errors) > cap else "")
    return f"<h3>Files that failed ({len(errors)})</h3>" + table(("file", "why"), rows) + more
