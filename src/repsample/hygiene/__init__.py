"""Dataset hygiene: unreadable files, exact and near-duplicates, leaks between splits.

One stage per module: exact (content hashes), near (blocked cosine search), dedup (which member
of a duplicate set stays eligible), leaks (splits), findings (the pass), output (check.csv),
run (``repsample check`` and the pass as ``select`` runs it; imported from there, since it
needs the config, which needs this package's threshold).
"""

from repsample.hygiene.findings import DEFAULT_THRESHOLD, Findings, Match, find
from repsample.hygiene.output import CHECK_CSV, CHECK_FIELDS, check_rows, write_check_csv

__all__ = [
    "CHECK_CSV",
    "CHECK_FIELDS",
    "DEFAULT_THRESHOLD",
    "Findings",
    "Match",
    "check_rows",
    "find",
    "write_check_csv",
]
