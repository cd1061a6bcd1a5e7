"""The files repsample writes into OUTPUT: atomic writes (a temporary name, then a rename) and its
CSV dialect (LF line ends, text cells escaped against spreadsheet formulas), read back as written."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repsample.fsio import temporary_name


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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(temporary_name(path.name))
    with naming(path):
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows (their ``fields``; None as empty) atomically, LF line ends, text cells escaped
    against spreadsheet formulas (csv_line); returns their number."""
    tmp = path.with_name(temporary_name(path.name))
    count = 0
    # surrogateescape: a file name that is not valid UTF-8 is written back byte for byte.
    with naming(path), open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(csv_line(fields))
        for row in rows:
            fh.write(csv_line(row.get(field) for field in fields))
            count += 1
    os.replace(tmp, path)
    return count


def read_csv_rows(path: Path, errors: str = "surrogateescape") -> list[dict[str, str]]:
    """Rows of a CSV file repsample wrote (write_csv), by column, every cell unescaped; LF or CRLF
    (earlier versions wrote CRLF). errors: for bytes that are not UTF-8 (surrogateescape: file
    names written back byte for byte). Raises OSError, csv.Error, UnicodeDecodeError."""
    with open(path, newline="", encoding="utf-8", errors=errors) as fh:
        return [{k: unescape_cell(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in csv.DictReader(fh)]
