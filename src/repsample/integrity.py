"""``repsample verify``: does OUTPUT still hold exactly what its manifest says?

Every selected file present with the content hash the manifest records, and nothing else beside
repsample's own records: the check people run before they trust a copy (restic check, git fsck).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from repsample.cache import hash_file
from repsample.export import MANIFEST, RUN_RECORD, exported_path
from repsample.hf_input import SELECTION_FOLDER
from repsample.listing_export import SELECTION_FILES
from repsample.publish import STATE
from repsample.records import read_run

# What a run writes besides the selected files (evaluation.json once `repsample evaluate` ran).
RECORDS = frozenset({MANIFEST, RUN_RECORD, "check.csv", "report.html", "evaluation.json"})
REPORT_ASSETS = ".report"
# --mode none from a listing or an hf:// dataset: the selection in the input's own form.
SELECTIONS = frozenset({*SELECTION_FILES, SELECTION_FOLDER})


@dataclass(frozen=True)
class Verification:
    """How OUTPUT differs from its manifest; ``ok`` when it does not."""

    checked: int
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra)


def verify_output(output: str | Path) -> Verification:
    """Compare OUTPUT with its manifest; raises RepsampleError where there is no readable run."""
    out = Path(output)
    run = read_run(out)
    mode = (run.record.data.get("parameters") or {}).get("mode", "copy")
    expected = {} if mode == "none" else {
        exported_path(out, r.group, r.path).relative_to(out).as_posix(): r.hash
        for r in run.manifest.rows if r.status == "selected"
    }
    missing, changed = [], []
    for rel, digest in sorted(expected.items()):
        path = out / rel
        if not os.path.lexists(path):
            missing.append(rel)
        elif not path.exists() or (path.is_symlink() and mode != "symlink") or hash_file(path) != digest:
            changed.append(rel)
    extra = [rel for rel in _entries(out) if rel not in expected and not _record(rel, mode)]
    return Verification(len(expected), missing, changed, extra)


def _record(rel: str, mode: str) -> bool:
    top = rel.split("/", 1)[0]
    return rel in RECORDS or top in (REPORT_ASSETS, STATE) or (mode == "none" and top in SELECTIONS)


def _entries(root: Path) -> list[str]:
    """Every non-folder under root (symlinks not followed), relative, POSIX."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    return sorted(out)
