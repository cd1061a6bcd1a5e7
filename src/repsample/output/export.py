"""Export: put the selected files, the manifest and the run record into the run's stage."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from repsample import fsio
from repsample.cache import hash_file
from repsample.errors import EnvironmentProblem, RepsampleError, UsageError, mention
from repsample.inputs.dispatch import listing_file, local_root
from repsample.inputs.folder import Group, ImageFile
from repsample.inputs.huggingface import SELECTION_FOLDER
from repsample.inputs.listing_write import SELECTION_FILES
from repsample.output.publish import STATE

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
RUN_RECORD = "run.json"
MANIFEST_FIELDS = ("path", "group", "status", "cluster", "distance", "rank", "hash", "error",
                   "duplicate_of", "leak_with", "typicality", "outlier_score", "uniqueness",
                   "duplicate_similarity", "reason")
"""duplicate_of: the image of the same group this one repeats (with --dedup it was not eligible,
status not_selected); leak_with: its closest exact or near match in another split (check.csv);
typicality, outlier_score, uniqueness: the image's scores within its group (repsample.hygiene.outliers),
empty for an error row or a lone image; duplicate_similarity: cosine similarity of its closest
duplicate in the group, empty when it has none; reason: why a valid image was not eligible
(``duplicate``: --dedup, ``leak``: --drop-leaks, ``outlier``: --drop-outliers), else empty."""
LEGACY_MANIFEST_FIELDS = MANIFEST_FIELDS[:10]
"""The columns of manifests written before the scores: still read (their scores empty)."""
OUTPUT_NAMES = frozenset({
    MANIFEST, RUN_RECORD, "check.csv", "check.json", "outliers.csv", "report.html", ".report",
    "evaluation.json", STATE, SELECTION_FOLDER, *SELECTION_FILES,
})
"""Every name repsample writes at the top of an OUTPUT (select, check, report, evaluate); a group
exported there may not take one (check_group_names). Upper layers name some of them again
(report.REPORT, checking.CHECK_JSON, ...): tests/test_trust_values.py holds them to this set."""
_TMP = ".repsample-tmp"  # write_atomic's and write_csv's temporary names: .<name>.repsample-tmp


def check_input_apart(input_dir: Path, output_dir: Path) -> None:
    """INPUT must be an existing folder, and OUTPUT neither INPUT nor inside it."""
    if not input_dir.exists():
        raise RepsampleError(f"INPUT {input_dir} does not exist")
    if not input_dir.is_dir():
        raise RepsampleError(f"INPUT {input_dir} is not a folder; point it at the dataset folder "
                             "or at a .csv, .jsonl or .parquet listing")
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst == src or src in dst.parents:
        raise RepsampleError(f"OUTPUT {output_dir} is inside INPUT {input_dir}; choose a folder outside it")


def check_paths(input_dir: Path, output_dir: Path) -> None:
    """Refuse what would modify INPUT: OUTPUT inside INPUT, or INPUT inside OUTPUT."""
    check_input_apart(input_dir, output_dir)
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst in src.parents:
        raise RepsampleError(f"OUTPUT {output_dir} contains INPUT {input_dir}; choose a folder beside it")


def check_input(src: Path | str, output_dir: Path) -> None:
    """Refuse what would modify INPUT, whatever its kind: a folder (check_paths), a listing
    (check_listing_apart), an hf:// dataset's folder; a URL is checked by repsample.fsio."""
    root, listed = local_root(src), listing_file(src)
    if root is not None:
        check_paths(root, output_dir)
    elif listed is not None:
        check_listing_apart(listed, output_dir)


def check_listing_apart(listing: Path, output_dir: Path) -> None:
    """OUTPUT may not hold a listing INPUT (its folder included); a listed file inside OUTPUT is
    refused when the listing is read (repsample.inputs.listing)."""
    src, dst = listing.resolve(), output_dir.resolve()
    if dst in src.parents:
        raise RepsampleError(f"OUTPUT {output_dir} holds the listing {listing}; choose a folder "
                             "beside it or below it")


def check_cache_apart(cache: Path, *, input_path: Path | None = None,
                      output_dir: Path | None = None) -> None:
    """Refuse an embedding cache at or inside INPUT (a folder or a listing file), which is never
    written, or inside OUTPUT, which each run replaces whole: the cache would stay behind in the
    replaced result, and the next command would not find it."""
    path = cache.resolve()
    for folder, why in ((input_path, "INPUT {}, which repsample never writes"),
                        (output_dir, "OUTPUT {}, which each run replaces whole")):
        if folder is not None and (path == folder.resolve() or folder.resolve() in path.parents):
            raise UsageError(f"{str(cache)!r} is inside {why.format(folder)}; pass a path outside it",
                             option="cache")


def check_group_names(groups: Sequence[Group]) -> None:
    """Refuse a group whose exported files would land on one of OUTPUT's own (OUTPUT_NAMES, or
    their temporary names): a folder manifest.csv would make manifest.csv unwritable, one named
    .repsample would put images in the run's state. A group's first folder is what lands at
    OUTPUT's top, a file of INPUT's top folder (group '.') lands there itself. Compared
    case-insensitively, as macOS and Windows file systems compare names."""
    taken = {name.casefold() for name in OUTPUT_NAMES}
    taken |= {f".{name}{_TMP}" for name in taken}
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


def exported_path(output_dir: Path, group: str, rel_path: str) -> Path:
    return output_dir / group / Path(rel_path).name


def export_file(image: ImageFile, digest: str | None, dest: Path, mode: str) -> str | None:
    """Place the image at dest, inside the run's private stage (so no temporary name is needed).

    The file must still be what was embedded: copies are hashed on the way and compared with
    ``digest``; links are checked against the scan's size and mtime. Returns a warning, if any;
    raises EnvironmentProblem when the file vanished or changed during the run.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = image.path
    warning = None
    try:
        if isinstance(src, str):  # a URL; check_url_paths allowed only copy mode
            fsio.download(src, dest)
            _check_content(image, dest, digest)
        elif mode == "copy":
            _copy_checked(image, src, dest, digest)
        elif mode in ("symlink", "hardlink"):
            if mode == "symlink":
                os.symlink(src.resolve(strict=True), dest)
            else:
                warning = _hardlink(image, src, dest, digest)
            st = src.stat()
            if (st.st_size, st.st_mtime_ns) != (image.size, image.mtime_ns):
                raise _changed(image)
        else:
            raise ValueError(f"unknown export mode {mode!r}")
    except FileNotFoundError as exc:
        if exc.filename is not None and Path(exc.filename) == dest.parent:
            raise
        raise EnvironmentProblem(
            f"INPUT file {image.rel} vanished during the run; rerun when INPUT is stable"
        ) from None
    return warning


def _hardlink(image: ImageFile, src: Path, dest: Path, digest: str | None) -> str | None:
    try:
        os.link(src, dest)
        return None
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        _copy_checked(image, src, dest, digest)
        return f"hardlink not possible ({exc.strerror}); copied instead"


def _copy_checked(image: ImageFile, src: Path, dest: Path, digest: str | None) -> None:
    """shutil.copy2, hashing the bytes on their way."""
    hasher = hashlib.sha256()
    with open(src, "rb") as fin, naming(dest), open(dest, "wb") as fout:
        for chunk in _chunks(fin, src):
            hasher.update(chunk)
            fout.write(chunk)
    shutil.copystat(src, dest)
    if digest is not None and hasher.hexdigest() != digest:
        raise _changed(image)


def _chunks(fh: IO[bytes], path: Path) -> Iterator[bytes]:
    with naming(path):  # a read that fails names the file read, not the one written
        while chunk := fh.read(1 << 20):
            yield chunk


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError met while writing path names it: a write or a close that meets a full disk
    raises one without a file name, which would otherwise reach the user as "a file"."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _check_content(image: ImageFile, path: Path, digest: str | None) -> None:
    if digest is not None and hash_file(path) != digest:
        raise _changed(image)


def _changed(image: ImageFile) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"INPUT file {image.rel} changed during the run (its content is not what was embedded); "
        "rerun when INPUT is stable"
    )


_FORMULA = re.compile(r"'*[=+\-@\t\r]")
"""A cell a spreadsheet may run as a formula starts with one of = + - @ tab CR (OWASP, "CSV
Injection"); the quotes in front keep the escape reversible (see escape_cell)."""
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def escape_cell(value: str) -> str:
    """A text cell as repsample's CSV files write it: a quote in front of one that starts like a
    formula (OWASP's advice), so that a spreadsheet shows file names such as ``=1+2.png`` as text.

    A name that already starts with quotes and then such a character gets one more, so
    unescape_cell gives back every name exactly. A plain number (``-0.5``) stays as it is: a
    spreadsheet reads it as the number it is.
    """
    if _FORMULA.match(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def unescape_cell(cell: str) -> str:
    """The value escape_cell wrote this cell for (an older file's cells come back unchanged, but
    for the rare one that starts with quotes and then = + - @ tab or CR)."""
    return cell[1:] if _ESCAPED.match(cell) else cell


def csv_line(cells: Iterable[Any]) -> str:
    """One CSV record ending in LF, text cells escaped (escape_cell), None as empty.

    The csv module quotes a cell that holds CR or LF only when they are in its line terminator:
    a record is written with CRLF and its end replaced, so a file name with a CR in it stays
    one quoted cell.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        escape_cell(v) if isinstance(v, str) else "" if v is None else v for v in cells)
    return buffer.getvalue()[:-2] + "\n"


def read_csv_rows(path: Path, errors: str = "surrogateescape") -> list[dict[str, str]]:
    """Rows of a CSV file repsample wrote (write_csv), by column, every cell unescaped; LF or CRLF
    (earlier versions wrote CRLF). errors: for bytes that are not UTF-8 (surrogateescape: file
    names written back byte for byte). Raises OSError, csv.Error, UnicodeDecodeError."""
    with open(path, newline="", encoding="utf-8", errors=errors) as fh:
        return [{k: unescape_cell(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in csv.DictReader(fh)]


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}{_TMP}")
    with naming(path):
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    write_csv(path, MANIFEST_FIELDS, rows)


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows (their ``fields``; None as empty) atomically, LF line ends, text cells escaped
    against spreadsheet formulas (csv_line); returns their number."""
    tmp = path.with_name(f".{path.name}{_TMP}")
    count = 0
    # surrogateescape: a file name that is not valid UTF-8 is written back byte for byte.
    with naming(path), open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(csv_line(fields))
        for row in rows:
            fh.write(csv_line(row.get(field) for field in fields))
            count += 1
    os.replace(tmp, path)
    return count


def read_manifest(path: Path) -> list[dict[str, str]]:
    return read_csv_rows(path)


def write_run_record(path: Path, record: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")


def format_distance(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:.6g}"  # NaN -> empty
