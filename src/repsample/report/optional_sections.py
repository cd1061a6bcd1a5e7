"""The sections of optional files: evaluation.json (selection against random) and check.csv
(duplicates).

Files in the layouts `repsample evaluate` and `repsample check` write get their own sections
(evaluation.py, duplicates.py). Anything else (an older, newer or hand-made file) is rendered
generically: numbers become tables and bars, names are matched to the manifest to show
thumbnails, and anything unexpected is shown as escaped JSON rather than failing the report.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

from repsample.report import duplicates, evaluation, svg
from repsample.report.gather import Item, RunData, items_by_path, match_item
from repsample.report.html import Thumbs, esc, table

_MAX_DEPTH = 4
_MAX_ROWS = 200


def evaluation_section(data: dict[str, Any], verified: bool = True) -> str:
    """verified: the file says it scores this selection (records.read_evaluation)."""
    note = "" if verified else (
        '<p class="note">evaluation.json does not say which selection it scored (hand-made, or '
        "written by an older repsample): it may describe an earlier one. Rerun `repsample "
        "evaluate OUTPUT` to score this one.</p>")
    parsed = evaluation.parse(data)
    if parsed is not None:
        return evaluation.section(parsed, note)
    return ('<section class="card" id="evaluation"><h2>Evaluation against random</h2>'
            f'{note}<p class="note">evaluation.json is not in the layout this version of '
            "`repsample evaluate` writes; shown as it is. Rerun `repsample evaluate OUTPUT` for "
            f"the comparison charts.</p>{_value(data, 0)}</section>")


def stale_evaluation_note() -> str:
    """In place of an evaluation of an earlier selection: never its figures, only that it is old."""
    return ('<section class="card" id="evaluation-stale"><p class="note">This folder\'s '
            "evaluation.json scored an earlier selection, so it is not shown. Run `repsample "
            "evaluate OUTPUT` to score this one.</p></section>")


def check_section(run: RunData, thumbs: Thumbs, cap: int) -> str:
    rows = run.check or []
    if duplicates.has_check_layout(rows):
        return duplicates.section(run, thumbs, cap)
    if not rows:
        return ('<section class="card" id="check"><h2>Duplicates</h2>'
                '<p class="muted">check.csv lists no pairs.</p></section>')
    by_path = items_by_path(run)
    headers = list(rows[0].keys())
    cells = []
    for row in rows[:cap]:
        cells.append([_check_cell(row.get(h) or "", by_path, run.input_dir, thumbs) for h in headers])
    more = f'<p class="muted">{len(rows) - cap} more rows in check.csv.</p>' if len(rows) > cap else ""
    return ('<section class="card" id="check"><h2>Duplicates and other findings (check.csv)</h2>'
            f"<p>{len(rows)} rows.</p>{table(headers, cells, raw=range(len(headers)))}{more}</section>")


def check_items(run: RunData, cap: int) -> list[Item]:
    """The images the check section shows as thumbnails."""
    rows = run.check or []
    if duplicates.has_check_layout(rows):
        return duplicates.shown_items(run, cap)
    by_path = items_by_path(run)
    matched = (match_item(v or "", by_path, run.input_dir) for row in rows[:cap] for v in row.values())
    return [i for i in matched if i is not None]


def _check_cell(value: str, by_path: dict[str, Item], input_dir: Path | None, thumbs: Thumbs) -> str:
    item = match_item(value, by_path, input_dir)
    if item is None:
        return esc(value)
    return f'<div class="strip">{thumbs.figure(item, item.status == "selected")}</div>{esc(value)}'


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _value(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        return _mapping(value, depth)
    if isinstance(value, list):
        return _sequence(value, depth)
    return f"<p>{esc(_scalar(value))}</p>"


def _mapping(data: dict[str, Any], depth: int) -> str:
    if depth >= _MAX_DEPTH:
        return _raw(data)
    numbers_ = {str(k): float(v) for k, v in data.items() if _is_number(v)}
    scalars = {str(k): v for k, v in data.items() if not isinstance(v, (dict, list)) and not _is_number(v)}
    nested = {str(k): v for k, v in data.items() if isinstance(v, (dict, list))}
    parts = []
    if scalars:
        parts.append(table(("field", "value"), [(k, _scalar(v)) for k, v in scalars.items()]))
    if numbers_:
        parts.append(table(("measure", "value"), [(k, f"{v:.6g}") for k, v in numbers_.items()],
                           numeric=(1,)))
        if len(numbers_) > 1:
            parts.append(svg.bars(list(numbers_), list(numbers_.values())))
    comparison = _comparison(nested)
    if comparison:
        parts.append(comparison)
        nested = {}
    for key, value in nested.items():
        parts.append(f"<h{min(3 + depth, 6)}>{esc(key)}</h{min(3 + depth, 6)}>{_value(value, depth + 1)}")
    return "".join(parts)


def _comparison(nested: dict[str, Any]) -> str:
    """Several dicts of numbers under shared keys ({'repsample': {...}, 'random': {...}}): one
    table with a column per dict, and a bar chart per measure, side by side."""
    if len(nested) < 2 or not all(isinstance(v, dict) for v in nested.values()):
        return ""
    columns = list(nested)
    measures = [k for k in nested[columns[0]]
                if all(_is_number(nested[c].get(k)) for c in columns)]
    if not measures or any(len(v) != len(measures) for v in nested.values()):
        return ""
    rows = [[m, *(f"{float(nested[c][m]):.6g}" for c in columns)] for m in measures]
    charts = "".join(
        f"<figure><figcaption>{esc(m)}</figcaption>"
        f"{svg.bars(columns, [float(nested[c][m]) for c in columns], width=300)}</figure>"
        for m in measures[:12]
    )
    return (table(("measure", *columns), rows, numeric=range(1, len(columns) + 1))
            + f'<div class="charts">{charts}</div>')


def _sequence(values: list[Any], depth: int) -> str:
    if not values:
        return '<p class="muted">(empty)</p>'
    if all(_is_number(v) for v in values):
        shown = ", ".join(f"{float(v):.4g}" for v in values[:_MAX_ROWS])
        floats = sorted(float(v) for v in values)
        summary = (f"n = {len(values)}, min {floats[0]:.4g}, median {floats[len(floats) // 2]:.4g}, "
                   f"max {floats[-1]:.4g}")
        return f"<p>{esc(summary)}</p><p class=\"muted\">{esc(shown)}</p>"
    if all(isinstance(v, dict) for v in values) and depth < _MAX_DEPTH:
        headers = list(dict.fromkeys(k for v in values for k in v))
        rows = [[_scalar(v.get(h, "")) for h in headers] for v in values[:_MAX_ROWS]]
        return table(headers, rows)
    return _raw(values)


def _scalar(value: Any) -> str:
    if _is_number(value):
        return f"{float(value):.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:500]
    return "" if value is None else str(value)


def _raw(value: Any) -> str:
    return f"<pre>{esc(json.dumps(value, indent=1, default=str)[:20000])}</pre>"
