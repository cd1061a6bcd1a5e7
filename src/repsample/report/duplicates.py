"""The duplicates section: check.csv's findings as side-by-side thumbnails, by kind, and what
dedup and the leak check did to each group (the manifest's duplicate_of and leak_with).

check.csv's columns are documented in hygiene/output.py. A file without them (an older or
hand-made one) is shown generically by optional_sections.py instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from repsample.report.gather import Item, RunData, items_by_path, match_item
from repsample.report.html import Thumbs, esc, table, tile

NEEDED = ("kind", "path", "other")
UNREADABLE = "unreadable"
KINDS = {
    "duplicate": ("Duplicates within a group",
                  "The left image repeats the right one in the same group; dedup keeps the right one."),
    "cross_group": ("Same picture in two groups of a split",
                    "One picture filed under two classes: possibly a label conflict."),
    "leak": ("Leaks between splits",
             "The same or a near-identical picture in two splits: a score measured on the held-out "
             "split is inflated by it."),
    UNREADABLE: ("Unreadable files", "Files the check could not read as images."),
}


@dataclass(frozen=True)
class Pair:
    """One finding: ``path`` matches ``other`` (or, for unreadable, ``path`` failed with error)."""

    kind: str
    match: str
    path: str
    group: str
    other: str
    other_group: str
    similarity: float | None
    error: str


def has_check_layout(rows: Sequence[Mapping[str, str]]) -> bool:
    return bool(rows) and all(field in rows[0] for field in NEEDED)


def pairs_by_kind(rows: Sequence[Mapping[str, str]]) -> dict[str, list[Pair]]:
    """Findings by kind, known kinds first. A leak or cross-group match gets a row for each of its
    two images; shown once here."""
    out: dict[str, list[Pair]] = {}
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        pair = Pair(row.get("kind") or "?", row.get("match") or "", row.get("path") or "",
                    row.get("group") or "", row.get("other") or "", row.get("other_group") or "",
                    _float(row.get("similarity")), row.get("error") or "")
        if pair.kind in ("leak", "cross_group"):
            first, second = sorted((pair.path, pair.other))
            if (pair.kind, first, second) in seen:
                continue
            seen.add((pair.kind, first, second))
        out.setdefault(pair.kind, []).append(pair)
    order = [k for k in KINDS if k in out] + sorted(k for k in out if k not in KINDS)
    return {k: out[k] for k in order}


def shown_items(run: RunData, cap: int) -> list[Item]:
    """The images whose thumbnails the section shows (cap pairs per kind), for the thumbnail plan."""
    if not run.check or not has_check_layout(run.check):
        return []
    by_path = items_by_path(run)
    out = []
    for kind, pairs in pairs_by_kind(run.check).items():
        if kind == UNREADABLE:
            continue
        for pair in pairs[:cap]:
            for path in (pair.path, pair.other):
                item = match_item(path, by_path, run.input_dir)
                if item is not None:
                    out.append(item)
    return out


def section(run: RunData, thumbs: Thumbs, cap: int) -> str:
    rows = run.check or []
    by_kind = pairs_by_kind(rows)
    parts = ['<section class="card" id="check"><h2>Duplicates and leaks</h2>', _summary(run, by_kind),
             _per_group(run)]
    if not by_kind:
        parts.append('<p class="muted">check.csv lists no duplicates, leaks or unreadable files.</p>')
    by_path = items_by_path(run)
    for kind, pairs in by_kind.items():
        title, about = KINDS.get(kind, (kind, ""))
        parts.append(f'<h3 id="check-{esc(kind)}">{esc(title)} ({len(pairs)})</h3>'
                     f'<p class="muted">{esc(about)}</p>')
        if kind == UNREADABLE:
            parts.append(table(("file", "group", "why"), [(p.path, p.group, p.error) for p in pairs[:cap]]))
        else:
            cards = "".join(_card(p, by_path, run, thumbs) for p in pairs[:cap])
            parts.append(f'<div class="pairs">{cards}</div>')
        if len(pairs) > cap:
            parts.append(f'<p class="muted">{len(pairs) - cap} more not shown; all are in check.csv.</p>')
    parts.append("</section>")
    return "".join(parts)


def _dedup(run: RunData) -> bool | None:
    """Whether select set duplicates aside; None when the run record does not say."""
    data = run.record.data
    recorded = (data.get("check") or {}).get("dedup", (data.get("parameters") or {}).get("dedup"))
    return recorded if isinstance(recorded, bool) else None


def _summary(run: RunData, by_kind: dict[str, list[Pair]]) -> str:
    tiles = [tile(KINDS.get(k, (k, ""))[0].lower(), len(v)) for k, v in by_kind.items()]
    check = run.record.data.get("check") or {}
    threshold = check.get("threshold")
    facts = [f"{len(run.check or [])} rows in check.csv"]
    if check.get("near_searched") is False:
        facts.append("near-duplicates not searched (--no-dedup): only exact copies are listed")
    elif isinstance(threshold, (int, float)):
        facts.append(f"near-duplicate threshold: cosine similarity ≥ {threshold:g}")
    dedup = _dedup(run)
    if dedup is not None:
        facts.append("dedup on: one image per duplicate set was eligible" if dedup
                     else "dedup off: duplicates stayed eligible")
    if check.get("drop_leaks"):
        facts.append("--drop-leaks: leaked train images were kept out of the selection")
    return (f'<div class="tiles">{"".join(tiles)}</div>' if tiles else "") + \
        f'<p class="muted">{esc(" · ".join(facts))}.</p>'


def _per_group(run: RunData) -> str:
    dedup = _dedup(run)
    dup_label = {True: "excluded by dedup", False: "duplicates (dedup off)", None: "duplicates"}[dedup]
    rows, quiet = [], 0
    for i, g in enumerate(run.groups):
        dups = sum(bool(item.duplicate_of) for item in g.items)
        leaked = [item for item in g.items if item.leak_with]
        if not dups and not leaked:
            quiet += 1
            continue
        rows.append((f'<a href="#g{i}">{esc(g.name)}</a>', len(g.items), dups, len(leaked),
                     sum(item.status == "selected" for item in leaked)))
    if not rows:
        return '<p class="muted">No group has a duplicate or a leak in manifest.csv.</p>'
    rest = f'<p class="muted">{quiet} other groups: none.</p>' if quiet else ""
    headers = ("group", "images", dup_label, "leaked to another split", "of which selected")
    return "<h3>Per group</h3>" + table(headers, rows, numeric=(1, 2, 3, 4), raw=(0,)) + rest


def _card(pair: Pair, by_path: dict[str, Item], run: RunData, thumbs: Thumbs) -> str:
    sides = "".join(_side(path, group, by_path, run, thumbs)
                    for path, group in ((pair.path, pair.group), (pair.other, pair.other_group)))
    sim = f"{pair.similarity:.4f}" if pair.similarity is not None else "?"
    match = {"exact": "exact copy (same bytes)", "near": "near-duplicate"}.get(pair.match, pair.match)
    where = pair.group if pair.group == pair.other_group else f"{pair.group} ↔ {pair.other_group}"
    return (f'<div class="pair"><div class="two">{sides}</div><div class="facts">similarity '
            f"<b>{esc(sim)}</b> · {esc(match)}<br>{esc(where)}</div></div>")


def _side(path: str, group: str, by_path: dict[str, Item], run: RunData, thumbs: Thumbs) -> str:
    item = match_item(path, by_path, run.input_dir)
    if item is None:  # not in this run's manifest (check.csv from another INPUT): name only
        stand_in = Item(path, group, "", None, None, None, "", "")
        return f'<div>{thumbs.figure(stand_in)}<div class="status">not in manifest</div></div>'
    status = {"selected": "selected", "not_selected": "not selected", "error": "failed"}.get(
        item.status, item.status)
    if item.duplicate_of and item.status == "not_selected" and _dedup(run):
        status = "set aside (duplicate)"
    cls = "status selected" if item.status == "selected" else "status"
    return (f'<div>{thumbs.figure(item, item.status == "selected")}'
            f'<div class="{cls}">{esc(status)}</div></div>')


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
