"""--mode none with a listing INPUT: the selection written back in the listing's own format
(CSV, JSON lines, Parquet), so that what the user came with is what they get."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repsample.fsio import temporary_name
from repsample.inputs.listing import FORMATS, Scanned, Table

if TYPE_CHECKING:
    import pyarrow as pa

def selection_file(fmt: str) -> str:
    """The file written beside the manifest, named by the listing's format (csv, jsonl, parquet)."""
    return f"selection.{fmt}"


SELECTION_FILES = frozenset(selection_file(fmt) for fmt in FORMATS.values())
NUMBERS: dict[str, type] = {"cluster": int, "rank": int, "distance": float, "typicality": float,
                            "outlier_score": float, "uniqueness": float, "duplicate_similarity": float,
                            "weight": float}
"""The manifest's numeric columns: numbers in selection.jsonl and .parquet (text in CSV)."""


def write_selection(table: Table, fmt: str, path_column: str, scanned: Scanned,
                    rows: Sequence[Mapping[str, Any]], fields: Sequence[str], folder: Path) -> Path:
    """``selection.<fmt>``: the listing's selected rows in its order, its columns as they were
    (paths made absolute, so the file works from OUTPUT), then the manifest's columns (named
    ``repsample_<name>`` where the listing has one of that name)."""
    chosen = sorted((scanned.origin[r["path"]][1], r) for r in rows if r["status"] == "selected")
    added = {f: f"repsample_{f}" if f in table.names else f for f in fields}
    kinds = {f: str if fmt == "csv" else NUMBERS.get(f, str) for f in fields}  # CSV: the manifest's text
    extra = {added[f]: [_cell(r.get(f), kinds[f]) for _, r in chosen] for f in fields}
    paths = [str(_absolute(scanned.location[r["path"]])) if r["path"] in scanned.location else None
             for _, r in chosen]
    out = folder / selection_file(fmt)
    tmp = out.with_name(temporary_name(out.name))
    if fmt == "parquet":
        _write_parquet(table.raw, [i for i, _ in chosen], path_column, paths, extra, added, tmp)
    else:
        records = []
        for (i, _), path, k in zip(chosen, paths, range(len(chosen)), strict=True):
            record = dict(table.raw[i])
            if path is not None:
                record[path_column] = path
            records.append(record | {name: values[k] for name, values in extra.items()})
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            if fmt == "csv":
                writer = csv.DictWriter(fh, [*table.names, *extra])
                writer.writeheader()
                writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
            else:
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    os.replace(tmp, out)
    return out


def _cell(value: Any, kind: type) -> Any:
    """A manifest value as its column's type (the manifest holds distances as formatted text);
    empty where it is not finite, as JSON has no infinity."""
    cell = None if value is None or value == "" else kind(value)
    return None if isinstance(cell, float) and not math.isfinite(cell) else cell


def _absolute(location: Path | str) -> Path | str:
    return location if isinstance(location, str) else Path(os.path.abspath(location))


def _write_parquet(table: pa.Table, indices: list[int], path_column: str, paths: list[str | None],
                   extra: Mapping[str, list[Any]], added: Mapping[str, str], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    taken = table.take(pa.array(indices, pa.int64()))
    kind = taken.schema.field(path_column).type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        at = taken.schema.get_field_index(path_column)
        taken = taken.set_column(at, path_column, pa.array(paths, kind))
    types = {int: pa.int64(), float: pa.float64()}
    for field, name in added.items():
        taken = taken.append_column(name, pa.array(extra[name], types.get(NUMBERS.get(field, str),
                                                                          pa.string())))
    pq.write_table(taken, out)
