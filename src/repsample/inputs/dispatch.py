"""What INPUT is: a folder (or a URL) of class folders, a listing file (.csv, .jsonl, .parquet)
or a Hugging Face dataset (hf://...). Each is scanned into the same groups; a listing or a
dataset can also write the selection back in its own form (--mode none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repsample import fsio
from repsample.errors import UsageError
from repsample.inputs import huggingface, listing, listing_write, rowbytes
from repsample.inputs.folder import Group, scan

SelectionWriter = Callable[[Sequence[Mapping[str, Any]], Sequence[str], Path], Path]
"""(manifest rows, manifest fields, the run's stage) -> the file or folder written."""


@dataclass(frozen=True)
class InputOptions:
    """What scanning needs from SelectConfig."""

    extensions: Sequence[str]
    groups: Sequence[str] | None = None
    follow_symlinks: bool = False
    columns: listing.Columns = field(default_factory=listing.Columns)
    hf_split: str | None = None


@dataclass(frozen=True)
class ScannedInput:
    groups: list[Group]
    write_selection: SelectionWriter | None = None  # None: a folder, the manifest is its listing
    holds_bytes: bool = False  # images read from a table, not from files


def locate(value: str | Path) -> Path | str:
    """INPUT as a location: hf:// stays as written, else as fsio reads it."""
    return str(value) if huggingface.is_hf(str(value)) else fsio.as_location(value)


def local_root(src: Path | str) -> Path | None:
    """The local folder INPUT is (OUTPUT may not be in it): a folder, an hf:// dataset's folder;
    None for a URL, a dataset from the cache or a listing file (listing_file)."""
    if huggingface.is_hf(src):
        return huggingface.local_folder(str(src))
    return None if isinstance(src, str) or listing_file(src) else src


def listing_file(src: Path | str) -> Path | None:
    """INPUT as a local listing file, if it is one."""
    return src if isinstance(src, Path) and listing.listing_format(src) and src.is_file() else None


def scan_input(src: Path | str, options: InputOptions, exclude: Sequence[Path] = ()) -> ScannedInput:
    """The groups of INPUT, whatever its kind."""
    columns = options.columns
    if huggingface.is_hf(src):
        hf = huggingface.scan_dataset(str(src), columns, options.hf_split, options.groups,
                                   options.follow_symlinks, exclude)
        return ScannedInput(hf.scanned.groups,
                            lambda rows, fields, folder: huggingface.write_selection(hf, rows, folder),
                            _holds_bytes(hf.scanned.groups))
    if options.hf_split is not None:
        raise UsageError("applies to an hf:// INPUT", option="hf_split")
    fmt = listing.listing_format(src)
    is_folder = isinstance(src, Path) and src.is_dir()
    if fmt is None or is_folder:
        given = [name for name in ("path", "label", "split") if getattr(columns, name) is not None]
        if given:
            raise UsageError("applies to a listing (.csv, .jsonl, .parquet) or hf:// INPUT",
                             option=f"{given[0]}_column")
        return ScannedInput(scan(src, options.extensions, options.groups,
                                 follow_symlinks=options.follow_symlinks, exclude=tuple(exclude)))
    table = listing.read_listing(src, fmt)
    chosen = listing.choose_columns(table, columns)
    root = src.parent if isinstance(src, Path) else src.rsplit("/", 1)[0]
    where = listing.Where(root.absolute() if isinstance(root, Path) else root, options.follow_symlinks,
                          exclude, listing.stamp_of(src), rowbytes.token(fsio.display(src), chosen))
    scanned = listing.scan_tables([table], [chosen], where, options.groups)

    def write(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], folder: Path) -> Path:
        return listing_write.write_selection(table, fmt, chosen.path or "", scanned, rows, fields, folder)

    return ScannedInput(scanned.groups, write, _holds_bytes(scanned.groups))


def _holds_bytes(groups: Sequence[Group]) -> bool:
    prefix = rowbytes.PROTOCOL + "://"
    return any(isinstance(f.path, str) and f.path.startswith(prefix) for g in groups for f in g.files)
