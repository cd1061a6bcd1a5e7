"""OUTPUT's layout: every name repsample writes at the top of an OUTPUT, and the manifest's columns.

Declared once here; every module that writes or reads one of them imports it from here. A group
that would be exported onto one of them is refused (check_group_names).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from repsample.errors import UsageError, mention
from repsample.fsio import temporary_name
from repsample.inputs.folder import Group
from repsample.inputs.huggingface import SELECTION_FOLDER
from repsample.inputs.listing_write import SELECTION_FILES

MANIFEST = "manifest.csv"
RUN_RECORD = "run.json"
CHECK_CSV = "check.csv"  # the hygiene findings (select and check)
CHECK_JSON = "check.json"  # check's summary
OUTLIERS_CSV = "outliers.csv"  # check's outliers per group
ISSUES_CSV = "issues.csv"  # check's image quality issues, one row per image and issue
REPORT = "report.html"
REPORT_ASSETS = ".report"  # the report's own files
THUMBS = f"{REPORT_ASSETS}/thumbs"  # its thumbnail cache: <content hash>.jpg
EVALUATION = "evaluation.json"
STATE = ".repsample"  # repsample's own bookkeeping inside OUTPUT (repsample.output.publish)
SELECTIONS = frozenset({SELECTION_FOLDER, *SELECTION_FILES})
"""--mode none from a listing or an hf:// dataset: the selection in the input's own form."""

OUTPUT_NAMES = frozenset({
    MANIFEST, RUN_RECORD, CHECK_CSV, CHECK_JSON, OUTLIERS_CSV, ISSUES_CSV, REPORT, REPORT_ASSETS, EVALUATION,
    STATE, *SELECTIONS,
})
"""Every name repsample writes at the top of an OUTPUT (select, check, report, evaluate); a group
exported there may not take one (check_group_names)."""

SCORE_FIELDS = ("typicality", "outlier_score", "uniqueness", "duplicate_similarity")
"""The manifest's per-image scores (repsample.hygiene.outliers); each cell a number or empty."""
ISSUE_TYPES = ("blurry", "dark", "light", "low_information", "grayscale", "odd_aspect", "odd_size")
"""The image quality issues (repsample.hygiene.quality), in the order they are listed."""
QUALITY_FIELDS = ("sharpness", "brightness_p25", "brightness_p50", "brightness_p90", "entropy",
                  "colourfulness", "elongation", "relative_size")
"""The manifest's image quality scores (repsample.hygiene.quality.CHECKS reads them)."""
WEIGHTED_MANIFEST_FIELDS = ("path", "group", "status", "cluster", "distance", "rank", "hash", "error",
                            "duplicate_of", "leak_with", *SCORE_FIELDS, "reason", "weight")
MANIFEST_FIELDS = (*WEIGHTED_MANIFEST_FIELDS, *QUALITY_FIELDS, "issues")
"""duplicate_of: the image of the same group this one repeats (with --dedup it was not eligible,
status not_selected); leak_with: its closest exact or near match in another split (check.csv);
typicality, outlier_score, uniqueness: the image's scores within its group (repsample.hygiene.outliers),
empty for an error row or a lone image; duplicate_similarity: cosine similarity of its closest
duplicate in the group, empty when it has none; reason: why a valid image was not eligible
(``duplicate``: --dedup, ``leak``: --drop-leaks, ``outlier``: --drop-outliers, an issue's name:
--drop-issues), else empty; weight: a selected image's share of its group's eligible images
(repsample.selection.weights), the weights of a group summing to 1; empty for an image not
selected; sharpness ... relative_size: its image quality scores, and issues: the quality issues
it has, separated by ';' (repsample.hygiene.quality), empty for an error row."""
UNWEIGHTED_MANIFEST_FIELDS = WEIGHTED_MANIFEST_FIELDS[:-1]
"""The columns of manifests written before the weights: still read (no weights)."""
LEGACY_MANIFEST_FIELDS = MANIFEST_FIELDS[:10]
"""The columns of manifests written before the scores: still read (their scores empty)."""
MANIFEST_HEADERS = (MANIFEST_FIELDS, WEIGHTED_MANIFEST_FIELDS, UNWEIGHTED_MANIFEST_FIELDS,
                    LEGACY_MANIFEST_FIELDS)
"""Every header a manifest may have and be read, the current one first."""


def format_weight(value: float) -> str:
    """A weight cell: the shortest text that reads back as the same float (repr), so that the
    written weights of a group sum to 1 as the computed ones do; 6 digits would not, with
    thousands of picks."""
    return repr(float(value))


def format_distance(value: float | None) -> str:
    """A number cell of the manifest (distance, scores) and outliers.csv: 6 significant digits,
    empty for none or NaN."""
    return "" if value is None or value != value else f"{value:.6g}"  # NaN -> empty


def check_group_names(groups: Sequence[Group]) -> None:
    """Refuse a group whose exported files would land on one of OUTPUT's own (OUTPUT_NAMES, or
    their temporary names): a folder manifest.csv would make manifest.csv unwritable, one named
    .repsample would put images in the run's state. A group's first folder is what lands at
    OUTPUT's top, a file of INPUT's top folder (group '.') lands there itself. Compared
    case-insensitively, as macOS and Windows file systems compare names."""
    taken = {name.casefold() for name in OUTPUT_NAMES}
    taken |= {temporary_name(name) for name in taken}
    for group in groups:
        tops = [Path(f.rel).name for f in group.files] if group.name == "." else [group.name]
        for top in tops:
            first = top.split("/", 1)[0]
            if first.casefold() in taken:
                raise UsageError(_taken(group.name, top, first))


def _taken(group: str, top: str, first: str) -> str:
    what, fix = ((f"file {top!r} of INPUT's top folder", "rename it in INPUT") if group == "." else
                 (f"group {top!r}", f"rename it in INPUT, or name the groups to select with "
                                    f"{mention('groups')}"))
    return (f"{what} would be exported onto {first!r}, a name OUTPUT keeps for its own files "
            f"({', '.join(sorted(OUTPUT_NAMES))}); {fix}")
