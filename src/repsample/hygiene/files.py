"""check.csv: one row per finding per image, so a spreadsheet filter answers "which images?".

Columns (paths relative to INPUT):

- ``kind``: ``duplicate`` (``path`` repeats ``other`` in the same group; dedup keeps ``other``),
  ``cross_group`` (``path`` matches ``other`` in another group of the same split, or both groups
  have no split: a possible label conflict), ``leak`` (``other`` is in another split, e.g. a
  train image also in test; both images get a row), ``unreadable`` (``path`` cannot be used).
- ``match``: ``exact`` (same bytes) or ``near`` (cosine similarity >= the threshold); empty for
  ``unreadable``.
- ``path``, ``group``: the image the row is about and its group.
- ``other``, ``other_group``: the image it matches (for ``cross_group`` and ``leak``, the most
  similar one; ties go to the first path) and its group.
- ``similarity``: cosine similarity of the two embeddings, 4 decimals (1 for exact copies).
- ``error``: why an ``unreadable`` file cannot be used.

Rows are sorted by kind, then path.

outliers.csv (``repsample check``): each group's most unusual images, a row each, by group then
``rank`` (1 = the most unusual): ``group``, ``rank``, ``path``, and the image's scores in its group
(repsample.hygiene.outliers) ``outlier_score`` (higher = more unusual), ``typicality`` (higher = more
typical), ``uniqueness`` (distance to its nearest other image).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from repsample.hygiene.findings import Findings, Match
from repsample.output.files import write_csv
from repsample.output.layout import CHECK_CSV as CHECK_CSV  # the names: declared in OUTPUT's layout
from repsample.output.layout import OUTLIERS_CSV as OUTLIERS_CSV

OUTLIER_FIELDS = ("group", "rank", "path", "outlier_score", "typicality", "uniqueness")
CHECK_FIELDS = ("kind", "match", "path", "group", "other", "other_group", "similarity", "error")
KINDS = ("duplicate", "cross_group", "leak", "unreadable")


def check_rows(findings: Findings) -> Iterator[dict[str, str]]:
    found = {"duplicate": findings.duplicates, "cross_group": findings.cross_group,
             "leak": findings.leaks}
    for kind, matches in found.items():
        for f in sorted(matches, key=lambda f: findings.paths[f]):
            yield _pair_row(findings, kind, f, matches[f])
    for f in sorted(findings.errors, key=lambda f: findings.paths[f]):
        yield {"kind": "unreadable", "match": "", "path": findings.paths[f],
               "group": findings.groups[f], "other": "", "other_group": "", "similarity": "",
               "error": findings.errors[f]}


def _pair_row(findings: Findings, kind: str, f: int, m: Match) -> dict[str, str]:
    return {"kind": kind, "match": "exact" if m.exact else "near", "path": findings.paths[f],
            "group": findings.groups[f], "other": findings.paths[m.other],
            "other_group": findings.groups[m.other], "similarity": f"{m.similarity:.4f}", "error": ""}


def write_check_csv(path: Path, findings: Findings) -> int:
    """Write atomically; returns the number of rows."""
    return write_csv(path, CHECK_FIELDS, check_rows(findings))
