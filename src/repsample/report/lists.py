"""A group's image list: every image, pictured or not, by name with its status, cluster,
distance, rank and scores; script.py adds search, filter and sort to it."""

from __future__ import annotations

from repsample.report.gather import SCORE_COLUMNS, ReportGroup, RunData
from repsample.report.html import esc, score_text, status_text

LIST_COLUMNS = ("status", "cluster", "distance", "rank")


def image_list(index: int, group: ReportGroup, run: RunData) -> str:
    """Every image of the group, one line each, in a closed <details>: plain aligned text, which a
    browser lays out in no time at thousands of lines (a table of 100,000 rows took seconds).
    The file name comes last, so the columns before it have fixed widths the script can cut at."""
    columns = [*LIST_COLUMNS, *(SCORE_COLUMNS[c].short for c in run.score_columns)]
    lines = []
    for item in group.items:
        scores = run.scores_of(item)
        cells = [status_text(item, scores),
                 "" if item.cluster is None or item.cluster < 0 else str(item.cluster),
                 "" if item.distance is None else f"{item.distance:.4g}",
                 "" if item.rank is None else str(item.rank)]
        cells += [score_text(scores.get(c) if scores is not None else None) for c in run.score_columns]
        lines.append((cells, item.name.replace("\n", "\\n").replace("\r", "\\r")))  # one line each
    widths = [max([len(h), *(len(cells[j]) for cells, _ in lines)]) for j, h in enumerate(columns)]

    def line(cells: list[str], name: str) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + name

    text = "\n".join([line(columns, "file"), *(line(cells, name) for cells, name in lines)])
    return _details(index, group, run, columns, text)


def _details(index: int, group: ReportGroup, run: RunData, columns: list[str], text: str) -> str:
    """The list in its <details>, with the controls the script reveals (hidden without it)."""
    clusters = sorted({i.cluster for i in group.items if i.cluster is not None and i.cluster >= 0})
    options = "".join(f"<option>{c}</option>" for c in clusters)
    sorts = "".join(f"<option>{esc(c)}</option>" for c in ("file", *columns))
    measures = "".join(f"<option>{esc(c)}</option>" for c in columns[2:] if c != "rank")
    controls = (f'<div class="controls" hidden><label>Search <input type="search" '
                f'aria-label="search file names of {esc(group.name)}"></label> <label>Status '
                '<select name="status"><option value="">any</option><option>kept</option><option>'
                'not kept</option><option>failed</option></select></label> <label>Cluster <select '
                f'name="cluster"><option value="">any</option>{options}</select></label> <label>'
                f'<select name="measure" aria-label="a measure">{measures}</select> at least '
                '<input type="number" name="least" step="any" size="6" aria-label="at least"></label> '
                f'<label>Sort by <select name="sort"><option value="">manifest order</option>{sorts}'
                '</select></label> <label><input type="checkbox" name="desc"> highest first</label> '
                "<output></output></div>")
    about = ", ".join((*columns, "file"))
    legend = "; ".join(f"{SCORE_COLUMNS[c].short}: {SCORE_COLUMNS[c].label}, {SCORE_COLUMNS[c].about}"
                       for c in run.score_columns)
    legend = f'<p class="muted">{esc(legend)}.</p>' if legend else ""
    return (f'<details class="images" id="g{index}-list"><summary>All {len(group.items)} images of '
            f'this group ({esc(about)})</summary>{legend}{controls}<pre class="list">{esc(text)}</pre>'
            "</details>")
