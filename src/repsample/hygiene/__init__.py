"""Dataset hygiene: unreadable files, exact and near-duplicates, leaks between splits, outliers.

Pure algorithms, one stage per module: exact (content hashes), near (nearest-neighbour
candidates), verify (confirmation from the pixels), pairs (both, cached by content), dedup (which
member of a duplicate set stays eligible), leaks (splits), findings (the pass), outliers (each
image's scores in its group), output (check.csv, outliers.csv). The orchestrators that run the
pass live above: dataset.py and checking.py.
"""

from repsample.hygiene.files import (
    CHECK_CSV,
    CHECK_FIELDS,
    OUTLIER_FIELDS,
    OUTLIERS_CSV,
    check_rows,
    write_check_csv,
)
from repsample.hygiene.findings import DEFAULT_THRESHOLD, Findings, Match, find

__all__ = [
    "CHECK_CSV",
    "CHECK_FIELDS",
    "DEFAULT_THRESHOLD",
    "OUTLIERS_CSV",
    "OUTLIER_FIELDS",
    "Findings",
    "Match",
    "check_rows",
    "find",
    "write_check_csv",
]
