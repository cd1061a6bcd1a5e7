"""Listings: a CSV, JSONL or Parquet file that names images (a path, or the image's bytes) with
a label and an optional split, scanned into the groups a folder scan gives (``split/label`` or
``label``), so that everything downstream works as for folders.

A row's manifest path is ``<group>/<name>``, its place in the mirrored OUTPUT tree: name is the
file name of its path cell (``<row>-<file name>`` where two rows of a group share one), or
``<row>.<ext>`` for a row that holds bytes; rows are numbered from 0, the header apart.
Relative paths are read from the listing's folder and may not leave it (``..``, or a symlink
unless follow_symlinks); absolute paths and URLs are read as written: the listing names them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repsample import fsio
from repsample.errors import UsageError, mention, missing_extra
from repsample.inputs import rowbytes
from repsample.inputs.folder import Group, ImageFile, pick_groups, within

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
PATH_COLUMNS = ("path", "image", "file_name", "filename", "file", "filepath", "image_path")
MISSING = -1  # the size of a listed file that cannot be stat'ed: an error row, as for a folder


def listing_format(location: Path | str) -> str | None:
    """csv, jsonl or parquet for a listing file (by its suffix), else None."""
    return FORMATS.get(posixpath.splitext(str(location).lower())[1])


@dataclass(frozen=True)
class Columns:
    """Which columns hold the image, the label and the split (None: the default)."""

    path: str | None = None
    label: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class ImageColumn:
    """Per row, the path it names, or the byte length of the image it holds (a row may have both:
    a Hugging Face image keeps its file name beside its bytes)."""

    paths: list[str | None]
    sizes: list[int | None]
    read: Callable[[int], bytes] | None = None
    heads: list[bytes | None] | None = None  # each image's first bytes: its format when unnamed


@dataclass(frozen=True)
class Table:
    """A listing, or one split of a dataset: its column names and their values by name."""

    where: str  # for messages: the listing's path, or the dataset and split
    names: tuple[str, ...]
    length: int
    cells: Callable[[str], list[Any]]
    images: Callable[[str], ImageColumn]
    split: str | None = None  # a dataset split's name, which the groups then start with
    raw: Any = None  # the rows as read (records, or an Arrow table): the selection is written from it


@dataclass(frozen=True)
class Scanned:
    """The groups, and per manifest path the table and row it came from."""

    groups: list[Group]
    origin: dict[str, tuple[int, int]]  # rel -> (table, row)
    location: dict[str, Path | str]  # rel -> the file a path row names


# -- reading ---------------------------------------------------------------------------------------

def read_listing(location: Path | str, fmt: str) -> Table:
    """The listing's table; a file that cannot be read as its format is one line, exit 2."""
    if fmt == "parquet":
        return arrow_table(_read_parquet(location), str(location))
    try:
        with fsio.open_binary(location) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            records, names = _read_csv(text) if fmt == "csv" else _read_jsonl(text, location)
    except FileNotFoundError:
        raise UsageError(f"INPUT {location} does not exist") from None
    except fsio.NotRegularFile as exc:
        raise UsageError(f"INPUT {location} is {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{location} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"{location} is not CSV ({exc})") from None
    return _records_table(records, names, str(location))


def _read_csv(text: io.TextIOWrapper) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    reader = csv.DictReader(text)
    records = list(reader)
    return records, tuple(reader.fieldnames or ())


def _read_jsonl(text: io.TextIOWrapper, location: Path | str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    records: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for number, line in enumerate(text, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{location} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{location} line {number} is not a JSON object")
        names.update(dict.fromkeys(record))
        records.append(record)
    return records, tuple(names)


def _records_table(records: list[dict[str, Any]], names: tuple[str, ...], where: str) -> Table:
    def cells(name: str) -> list[Any]:
        return [r.get(name) for r in records]

    def images(name: str) -> ImageColumn:
        values = cells(name)
        for row, value in enumerate(values):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{where} row {row}: column {name!r} holds {_kind(value)}, not a "
                                 "path")
        return ImageColumn(values, [None] * len(values))

    return Table(where, names, len(records), cells, images, raw=records)


def _read_parquet(location: Path | str) -> pa.Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise missing_extra("pyarrow", "parquet") from None
    try:
        if isinstance(location, str):
            fs, path = fsio.url_fs(location)
            return pq.read_table(path, filesystem=fs)
        return pq.read_table(location, memory_map=True)
    except FileNotFoundError:
        raise UsageError(f"INPUT {location} does not exist") from None
    except Exception as exc:  # pyarrow raises its own types for a file that is not Parquet
        raise UsageError(f"{location} is not a readable Parquet file ({exc})") from None


def arrow_table(table: pa.Table, where: str, split: str | None = None,
                label_names: Mapping[str, Sequence[str]] | None = None) -> Table:
    """A table read by Arrow; label_names: class names of integer columns (Hugging Face's ClassLabel)."""

    def cells(name: str) -> list[Any]:
        values: list[Any] = table.column(name).to_pylist()
        names = (label_names or {}).get(name)
        if names is None:
            return values
        return [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]

    return Table(where, tuple(table.column_names), table.num_rows, cells,
                 lambda name: arrow_images(table.column(name), f"{where} column {name!r}"), split,
                 raw=table)


def arrow_images(column: pa.ChunkedArray, where: str) -> ImageColumn:
    """Paths (a string column) or bytes (binary, or a struct with ``bytes`` and ``path`` fields,
    as Hugging Face stores images); bytes are read one row at a time, when asked for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ImageColumn(column.to_pylist(), [None] * len(column))
    paths: list[str | None] = [None] * len(column)
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        if kind.get_field_index("path") >= 0:
            paths = pc.struct_field(column, "path").to_pylist()
        column = pc.struct_field(column, "bytes")
        kind = column.type
    if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        raise UsageError(f"{where} holds {kind}, not image paths or bytes; name the image column "
                         f"with {mention('path_column')}")
    data = column

    def read(row: int) -> bytes:
        value = data[row].as_py()
        if value is None:
            raise KeyError(row)
        return bytes(value)

    return ImageColumn(paths, pc.binary_length(column).to_pylist(), read,
                       pc.binary_slice(column, 0, 16).to_pylist())


# -- choosing columns --------------------------------------------------------------------------------

def choose_columns(table: Table, asked: Columns, image_default: str | None = None,
                   label_default: str | None = None) -> Columns:
    """The columns to read: those asked for (which must exist), else the defaults."""
    def need(name: str, option: str) -> str:
        if name not in table.names:
            raise UsageError(f"{table.where} has no column {name!r} (its columns: "
                             f"{', '.join(table.names) or 'none'}); name it with {mention(option)}")
        return name

    if asked.path is not None:
        path = need(asked.path, "path_column")
    else:
        path = image_default or next((n for n in PATH_COLUMNS if n in table.names), PATH_COLUMNS[0])
        need(path, "path_column")
    label = need(asked.label or label_default or "label", "label_column")
    split = need(asked.split, "split_column") if asked.split else (
        "split" if "split" in table.names and table.split is None else None)
    return Columns(path, label, split)


# -- groups ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Where:
    """What a listing's paths are read against, and what they may not reach."""

    root: Path | str  # the listing's folder (a str: a URL)
    follow_symlinks: bool = False
    exclude: Sequence[Path] = ()  # OUTPUT and its stage
    stamp: int = 0  # stands in for a bytes row's mtime: changes when the listing does
    source: str = ""  # rowbytes token of the bytes rows


@dataclass(frozen=True)
class _Row:
    table: int
    index: int
    group: str
    name: str
    location: Path | str | None  # a path row's file
    size: int | None = None  # a bytes row's length


def scan_tables(tables: Sequence[Table], columns: Sequence[Columns], where: Where,
                groups: Sequence[str] | None = None) -> Scanned:
    """The groups of every table's rows; a listing that cannot be trusted is one line, exit 2."""
    rows: list[_Row] = []
    readers: dict[int, Callable[[int], bytes]] = {}
    for t, (table, cols) in enumerate(zip(tables, columns, strict=True)):
        if not table.length:
            raise UsageError(f"{table.where} has no rows")
        images = table.images(cols.path or "")
        if images.read is not None:
            readers[t] = images.read
        rows.extend(_table_rows(t, table, cols, images, where))
    rows = _unique_names(rows)
    _refuse_duplicates(rows, tables)
    found: dict[str, list[ImageFile]] = {}
    outside: dict[str, int] = {}
    origin: dict[str, tuple[int, int]] = {}
    location: dict[str, Path | str] = {}
    inside = os.path.realpath(where.root) if isinstance(where.root, Path) else ""
    for row in rows:
        rel = f"{row.group}/{row.name}"
        origin[rel] = (row.table, row.index)
        if row.location is None:
            assert row.size is not None
            image = ImageFile(rowbytes.url(where.source, rel), rel, row.group, row.size, where.stamp)
        else:
            location[rel] = row.location
            if _leads_out(row.location, where, inside):
                outside[row.group] = outside.get(row.group, 0) + 1
                continue
            image = _stat(row.location, rel, row.group)
        found.setdefault(row.group, []).append(image)
    if readers:
        rowbytes.serve(where.source, _reader(origin, readers))
    if outside:
        logger.warning("skipped %d listed file(s) reached through a symlink that leads outside %s; "
                       "pass --follow-symlinks to use them", sum(outside.values()), where.root)
    picked = pick_groups({g: sorted(f, key=lambda i: i.rel) for g, f in found.items()}, groups,
                         tables[0].where, ("any",))
    picked = [dataclasses.replace(g, outside_links=outside.get(g.name, 0)) for g in picked]
    return Scanned(picked, origin, location)


def _table_rows(t: int, table: Table, cols: Columns, images: ImageColumn, where: Where) -> list[_Row]:
    labels = table.cells(cols.label or "")
    splits = table.cells(cols.split) if cols.split else [table.split] * table.length
    if not any(_text(v) for v in labels):
        raise UsageError(f"{table.where}: column {cols.label!r} is empty; name the label column "
                         f"with {mention('label_column')}")
    rows = []
    for i in range(table.length):
        label = _part(labels[i], "label", table.where, i, cols.label)
        split = None if splits[i] is None and cols.split is None else _part(
            splits[i], "split", table.where, i, cols.split)
        group = f"{split}/{label}" if split else label
        path, size = images.paths[i], images.sizes[i]
        if size is not None:
            rows.append(_Row(t, i, group, f"{i}{_extension(images, i, path)}", None, size))
        elif path:
            location = _locate(path, where.root, table.where, i)
            rows.append(_Row(t, i, group, _file_name(location, table.where, i), location))
        else:
            raise UsageError(f"{table.where} row {i} has an empty {cols.path!r} cell")
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _part(value: Any, what: str, where: str, row: int, column: str | None) -> str:
    """A label or split as one folder name in OUTPUT: text or a number (a JSON object or list,
    a Parquet struct, would name a folder by Python's repr), never empty, '.', '..' or with a
    slash."""
    if value is not None and not isinstance(value, str | int | float):
        raise UsageError(f"{where} row {row}: column {column!r} holds {_kind(value)}; a {what} "
                         "is text or a number")
    text = _text(value)
    if not text:
        raise UsageError(f"{where} row {row} has an empty {what}")
    if text in (".", "..") or "/" in text or "\\" in text or "\x00" in text or (
            len(text) == 2 and text[1] == ":"):
        raise UsageError(f"{where} row {row}: {what} {text!r} cannot name a folder (no '/', '\\', "
                         "'.' or '..')")
    return text


def _kind(value: Any) -> str:
    """A cell's type as the listing's reader would say it (JSON's names where they differ)."""
    names: dict[type, str] = {dict: "an object", list: "a list", bytes: "bytes"}
    return names.get(type(value), f"a {type(value).__name__}")


def _extension(images: ImageColumn, row: int, hint: str | None) -> str:
    return rowbytes.extension((images.heads or [])[row] or b"", hint)


def _locate(cell: str, root: Path | str, where: str, row: int) -> Path | str:
    """The file a path cell names: a URL or absolute path as written, else under root."""
    if fsio.is_url(cell):
        return fsio.as_location(cell)
    if os.path.isabs(cell):
        return Path(os.path.normpath(cell))
    rel = posixpath.normpath(cell.replace(os.sep, "/"))
    if rel == ".." or rel.startswith("../"):
        raise UsageError(f"{where} row {row}: {cell!r} leads outside {root}; write it as an "
                         "absolute path to use a file there")
    return fsio.join(root, rel) if isinstance(root, str) else root / rel


def _file_name(location: Path | str, where: str, row: int) -> str:
    name = posixpath.basename(str(location).rstrip("/")) if isinstance(location, str) else location.name
    if not name or name in (".", ".."):
        raise UsageError(f"{where} row {row}: {str(location)!r} names no file")
    return name


def _unique_names(rows: list[_Row]) -> list[_Row]:
    """Rows of a group whose files share a name get their row number in front of it, again
    while that is still taken (a file may be named ``0-a.png`` itself): each name of a group is
    then unique, whatever the listing's names, and the same listing gives the same names."""
    count = Counter((row.group, row.name) for row in rows)
    taken = {key for key, n in count.items() if n == 1}
    out = []
    for row in rows:
        if count[(row.group, row.name)] > 1:
            name = f"{row.index}-{row.name}"
            while (row.group, name) in taken:
                name = f"{row.index}-{name}"
            taken.add((row.group, name))
            row = dataclasses.replace(row, name=name)
        out.append(row)
    return out


def _refuse_duplicates(rows: list[_Row], tables: Sequence[Table]) -> None:
    first: dict[str, _Row] = {}
    for row in rows:
        if row.location is None:
            continue
        key = str(row.location)
        if key in first:
            earlier = first[key]
            where = tables[row.table].where
            raise UsageError(f"{where}: rows {earlier.index} and {row.index} both name {key}; "
                             "list each image once")
        first[key] = row


def _leads_out(location: Path | str, where: Where, inside: str) -> bool:
    """Whether a file under the listing's folder is reached through a symlink leading out of it
    (absolute paths elsewhere are read as written). A file in OUTPUT is refused outright."""
    if isinstance(location, str):
        return False
    real = os.path.realpath(location)
    for folder in where.exclude:
        if within(real, os.path.realpath(folder)):
            raise UsageError(f"the listing names {location}, inside OUTPUT, which this run replaces; "
                             "copy it elsewhere first")
    lexically_inside = within(os.path.abspath(location), os.path.abspath(where.root))
    return lexically_inside and not where.follow_symlinks and not within(real, inside)


def _stat(location: Path | str, rel: str, group: str) -> ImageFile:
    """A listed file as the scan sees it; one that cannot be stat'ed becomes an error row."""
    try:
        if isinstance(location, str):
            fs, path = fsio.url_fs(location)
            info = fs.info(path)
            return ImageFile(location, rel, group, int(info.get("size") or 0), fsio.version_stamp(info))
        st = os.stat(location)
    except OSError:
        return ImageFile(location, rel, group, MISSING, MISSING)
    return ImageFile(location, rel, group, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _reader(origin: Mapping[str, tuple[int, int]],
            readers: Mapping[int, Callable[[int], bytes]]) -> Callable[[str], bytes]:
    def read(rel: str) -> bytes:
        table, row = origin[rel]
        return readers[table](row)

    return read


def stamp_of(location: Path | str) -> int:
    """A number that changes when the listing file does (its stat, or its store's metadata)."""
    if isinstance(location, str):
        fs, path = fsio.url_fs(location)
        return fsio.version_stamp(fs.info(path))
    st = os.stat(location)
    return rowbytes.stamp(st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_size)
