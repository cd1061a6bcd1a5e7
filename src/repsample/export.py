"""Export: put the selected files into OUTPUT and write the manifest and run record atomically."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repsample import fsio
from repsample.errors import RepsampleError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
RUN_RECORD = "run.json"
MANIFEST_FIELDS = ("path", "group", "status", "cluster", "distance", "rank", "hash", "error",
                   "duplicate_of", "leak_with")
"""duplicate_of: the image of the same group this one repeats (with --dedup it was not eligible,
status not_selected); leak_with: its closest exact or near match in another split (check.csv)."""


def check_input_apart(input_dir: Path, output_dir: Path) -> None:
    """INPUT must be an existing folder, and OUTPUT neither INPUT nor inside it."""
    if not input_dir.exists():
        raise RepsampleError(f"INPUT {input_dir} does not exist")
    if not input_dir.is_dir():
        raise RepsampleError(f"INPUT {input_dir} is not a folder; point it at the dataset folder")
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst == src or src in dst.parents:
        raise RepsampleError(f"OUTPUT {output_dir} is inside INPUT {input_dir}; choose a folder outside it")


def check_paths(input_dir: Path, output_dir: Path, overwrite: bool) -> None:
    """Refuse what would modify INPUT or clobber someone's files."""
    check_input_apart(input_dir, output_dir)
    src, dst = input_dir.resolve(), output_dir.resolve()
    if dst in src.parents:
        raise RepsampleError(f"OUTPUT {output_dir} contains INPUT {input_dir}; choose a folder beside it")
    check_output(output_dir, overwrite)


def check_output(output_dir: Path, overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder unless overwriting, as OUTPUT."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RepsampleError(f"OUTPUT {output_dir} is a file; choose a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise RepsampleError(
            f"OUTPUT {output_dir} is not empty; pass --overwrite to replace an earlier selection "
            "or choose an empty folder"
        )


def clear_previous(output_dir: Path) -> int:
    """Remove the files an earlier run exported (per its manifest); nothing else is touched."""
    manifest = output_dir / MANIFEST
    if not manifest.is_file():
        return 0
    removed = 0
    for row in read_manifest(manifest):
        if row.get("status") != "selected":
            continue
        target = exported_path(output_dir, row["group"], row["path"])
        if target.is_file() or target.is_symlink():
            target.unlink()
            removed += 1
    return removed


def exported_path(output_dir: Path, group: str, rel_path: str) -> Path:
    return output_dir / group / Path(rel_path).name


def export_file(src: Path | str, dest: Path, mode: str) -> str | None:
    """Place src (a path, or an fsspec URL in copy mode) at dest through a temporary name.

    Returns a warning, if any.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.repsample-tmp")
    warning = None
    try:
        if isinstance(src, str):  # a URL; check_url_paths allowed only copy mode
            fsio.download(src, tmp)
        elif mode == "copy":
            shutil.copy2(src, tmp)
        elif mode == "symlink":
            os.symlink(src.resolve(), tmp)
        elif mode == "hardlink":
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                warning = f"hardlink not possible ({exc.strerror}); copied instead"
                shutil.copy2(src, tmp)
        else:
            raise ValueError(f"unknown export mode {mode!r}")
        os.replace(tmp, dest)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
    return warning


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.repsample-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.repsample-tmp")
    # surrogateescape: a file name that is not valid UTF-8 is written back byte for byte.
    with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def write_run_record(path: Path, record: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")


def format_distance(value: float) -> str:
    return "" if value != value else f"{value:.6g}"  # NaN -> empty
