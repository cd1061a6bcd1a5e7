"""Export: put the selected files, the manifest and the run record into the run's stage."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from repsample import fsio
from repsample.errors import EnvironmentProblem
from repsample.fsio import hash_file
from repsample.inputs.folder import ImageFile
from repsample.output.files import naming, write_atomic, write_csv
from repsample.output.layout import MANIFEST_FIELDS

logger = logging.getLogger(__name__)


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


def _check_content(image: ImageFile, path: Path, digest: str | None) -> None:
    if digest is not None and hash_file(path) != digest:
        raise _changed(image)


def _changed(image: ImageFile) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"INPUT file {image.rel} changed during the run (its content is not what was embedded); "
        "rerun when INPUT is stable"
    )


def write_manifest(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    write_csv(path, MANIFEST_FIELDS, rows)


def write_run_record(path: Path, record: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
