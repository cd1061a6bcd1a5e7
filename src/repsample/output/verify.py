"""``repsample verify``: does OUTPUT still hold exactly what its manifest says?

Every selected file present with the content hash the manifest records, and nothing else beside
repsample's own records: the check people run before they trust a copy (restic check, git fsck).
With ``--mode none`` nothing is exported: the selection in the input's own form (``selection.*``,
or an hf:// dataset's ``selection`` folder) is what is checked against the manifest.

``adopt_output`` takes over an OUTPUT that passes this check whole but that no inventory proves
repsample wrote (copied with ``cp -a``, or its inventory damaged), on the user's word.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repsample.errors import RepsampleError, missing_extra
from repsample.fsio import hash_file
from repsample.inputs.huggingface import SELECTION_FOLDER, is_hf
from repsample.inputs.listing import listing_format
from repsample.inputs.listing_write import selection_file
from repsample.output.export import exported_path
from repsample.output.files import read_csv_rows
from repsample.output.layout import (
    CHECK_CSV,
    EVALUATION,
    MANIFEST,
    MANIFEST_HEADERS,
    REPORT,
    REPORT_ASSETS,
    RUN_RECORD,
    STATE,
    THUMBS,
)
from repsample.output.publish import adopt
from repsample.output.records import Run, read_run

# What a run writes besides the selected files (evaluation.json once `repsample evaluate` ran).
RECORDS = frozenset({MANIFEST, RUN_RECORD, CHECK_CSV, REPORT, EVALUATION})
_THUMBNAIL = re.compile(rf"{re.escape(THUMBS)}/[0-9a-f]{{64}}\.jpg")
# What a selection file says of each selected image: compared with the manifest's row.
_COMPARED = ("path", "group", "status", "hash")


@dataclass(frozen=True)
class Verification:
    """How OUTPUT differs from its manifest; ``ok`` when it does not.

    checked: the selected files checked (with --mode none: the selected rows the selection
    lists); selection: the selection file or folder checked (--mode none), else None."""

    checked: int
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    selection: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra)


def verify_output(output: str | Path) -> Verification:
    """Compare OUTPUT with its manifest; raises RepsampleError where there is no readable run."""
    out = Path(output)
    run = read_run(out)
    mode = run.record.mode
    if mode == "none":
        return _verify_selection(out, run)
    expected = {
        exported_path(out, r.group, r.path).relative_to(out).as_posix(): r.hash
        for r in run.manifest.rows if r.status == "selected"
    }
    missing, changed = [], []
    for rel, digest in sorted(expected.items()):
        problem = _differs(out / rel, digest, mode)
        if problem == "missing":
            missing.append(rel)
        elif problem == "changed":
            changed.append(rel)
    changed += _changed_records(out)
    extra = [rel for rel in _entries(out) if not _record(rel, None) and not _at(rel, expected)]
    return Verification(len(expected), missing, changed, extra)


def _at(rel: str, expected: Mapping[str, str]) -> bool:
    """Whether rel is an expected file, or inside a folder found in one's place (a change, not
    something extra)."""
    parts = rel.rstrip("/").split("/")
    return any("/".join(parts[:i]) in expected for i in range(1, len(parts) + 1))


def adopt_output(output: str | Path) -> tuple[Verification, bool]:
    """Check OUTPUT whole (verify_output) and, where it holds exactly its result, record a fresh
    inventory of it, so that ``--overwrite`` may replace it again. Returns the check and whether
    OUTPUT was adopted; nothing is written when it differs in any way."""
    out = Path(output)
    read_run(out)  # a missing or damaged run is one line before anything is locked
    seen: list[Verification] = []

    def check() -> bool:
        seen.append(verify_output(out))
        return seen[-1].ok

    adopted = adopt(out, check)
    return seen[-1], adopted


def _differs(path: Path, digest: str, mode: str) -> str | None:
    """'missing', 'changed' (a replacement, a folder, another link, other bytes) or None."""
    if not os.path.lexists(path):
        return "missing"
    if path.is_symlink() and mode != "symlink":
        return "changed"
    try:
        st = path.stat()
    except FileNotFoundError:  # a link that leads nowhere
        return "changed"
    if not stat.S_ISREG(st.st_mode):  # a folder (or a FIFO, which reading would wait on forever)
        return "changed"
    return None if hash_file(path) == digest else "changed"


def _changed_records(out: Path) -> list[str]:
    """repsample's own files that are not files (a symlink put in their place, a folder)."""
    found = [rel for rel in sorted(RECORDS) if os.path.lexists(out / rel)]
    found += [rel for rel in _entries(out) if _THUMBNAIL.fullmatch(rel)]
    return [rel for rel in found if not stat.S_ISREG(os.lstat(out / rel).st_mode)]


def _record(rel: str, selection: str | None) -> bool:
    """Whether rel is one of repsample's records (a thumbnail, its state, the selection file)."""
    top = rel.split("/", 1)[0]
    return (rel in RECORDS or bool(_THUMBNAIL.fullmatch(rel)) or rel in _REPORT_FOLDERS
            or top == STATE or (selection is not None and top == selection))


_REPORT_FOLDERS = frozenset({f"{REPORT_ASSETS}/", f"{THUMBS}/"})  # may be empty


def _entries(root: Path) -> list[str]:
    """Every non-folder under root (symlinks not followed), and every empty folder (shown with
    a "/" at its end: one that holds nothing of the selection), relative, POSIX."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append(prefix + name)
        if prefix and not filenames and not dirnames:
            out.append(prefix)
    return sorted(out)


# -- --mode none: the selection in the input's form ---------------------------------------------

def _verify_selection(out: Path, run: Run) -> Verification:
    """OUTPUT of a --mode none run: its selection file (or folder) lists exactly the manifest's
    selected rows; nothing else beside the records."""
    selected = [r for r in run.manifest.rows if r.status == "selected"]
    name = _selection_name(run.record.input)
    missing, changed = [], _changed_records(out)
    if name is not None:
        path = out / name
        if not os.path.lexists(path):
            missing.append(name)
        elif not _selection_matches(path, name, selected):
            changed.append(name)
    extra = [rel for rel in _entries(out) if not _record(rel, name)]
    return Verification(len(selected) if name is not None else 0, missing, changed, extra, name)


def _selection_name(source: object) -> str | None:
    """What a --mode none run of this INPUT writes beside the manifest; None for a folder's."""
    if not isinstance(source, str):
        return None
    if is_hf(source):
        return SELECTION_FOLDER
    fmt = listing_format(source)
    return None if fmt is None else selection_file(fmt)


def _selection_matches(path: Path, name: str, selected: list[Any]) -> bool:
    if name == SELECTION_FOLDER:
        return not path.is_symlink() and path.is_dir() and _dataset_rows(path) == len(selected)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        rows = _selection_rows(path, name.rsplit(".", 1)[1])
    except (OSError, ValueError, csv.Error):  # unreadable, not the format its name says
        return False
    if rows is None:
        return False
    want = Counter(tuple(str(getattr(r, f)) for f in _COMPARED) for r in selected)
    return Counter(rows) == want


def _selection_rows(path: Path, fmt: str) -> list[tuple[str, ...]] | None:
    """What each row of a selection file says in the manifest's columns (_COMPARED), read from
    its last columns, where write_selection puts them; None where they are not there."""
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise missing_extra("pyarrow", "listing") from None
        table = pq.read_table(path)
        names = list(table.column_names)
        columns = _manifest_columns(names)
        if columns is None:
            return None
        values = {f: table.column(columns[f]).to_pylist() for f in _COMPARED}
        return [tuple(_text(values[f][i]) for f in _COMPARED) for i in range(table.num_rows)]
    records = _text_records(path, fmt)
    found = []
    for record in records:
        columns = _manifest_columns(list(record))
        if columns is None:
            return None
        found.append(tuple(_text(record[columns[f]]) for f in _COMPARED))
    return found


def _text_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":  # cells written against spreadsheet formulas read back as they were
        return read_csv_rows(path, errors="strict")
    with open(path, newline="", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _manifest_columns(names: list[str]) -> dict[str, str] | None:
    """field -> column of the manifest's columns among a selection's: its last ones, each named
    as the field or, where the listing had a column of that name, ``repsample_<field>``."""
    for fields in MANIFEST_HEADERS:
        tail = names[-len(fields):]
        if len(tail) == len(fields) and all(c in (f, f"repsample_{f}")
                                            for c, f in zip(tail, fields, strict=True)):
            return dict(zip(fields, tail, strict=True))
    return None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _dataset_rows(folder: Path) -> int | None:
    """The rows of a dataset saved with save_to_disk (all splits); None where it cannot be read."""
    try:
        import datasets
    except ImportError:
        raise missing_extra("datasets", "hf") from None
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (OSError, ValueError, FileNotFoundError, RepsampleError):
        return None
    parts = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    return sum(int(part.num_rows) for part in parts)
