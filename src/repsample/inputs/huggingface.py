"""Hugging Face ``datasets`` as INPUT (``hf://NAME_OR_PATH``): a dataset saved with
``save_to_disk``, a folder ``load_dataset`` reads (``imagefolder``), or a name in the user's
cache. Its rows become a listing's (repsample.inputs.listing): groups ``split/label`` for a dataset
with splits, images from its image feature, read one row at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repsample.errors import UsageError, missing_extra
from repsample.inputs import rowbytes
from repsample.inputs.listing import Columns, Scanned, Table, Where, arrow_table, choose_columns, scan_tables

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger(__name__)

PREFIX = "hf://"
SELECTION_FOLDER = "selection"
"""--mode none: the selected rows as a dataset saved with save_to_disk (load_from_disk reads it)."""


def is_hf(location: object) -> bool:
    return isinstance(location, str) and location.startswith(PREFIX)


def local_folder(location: str) -> Path | None:
    """The folder an hf:// INPUT reads from, where it is one on this machine."""
    path = Path(location[len(PREFIX):])
    return path if path.is_dir() else None


@dataclass(frozen=True)
class HfInput:
    """The dataset's splits (None: a dataset without splits), scanned."""

    parts: dict[str | None, Dataset]
    scanned: Scanned


def scan_dataset(location: str, asked: Columns, split: str | None, groups: Sequence[str] | None,
                 follow_symlinks: bool, exclude: Sequence[Path]) -> HfInput:
    name = location[len(PREFIX):]
    parts = _load(name, split)
    tables = [_table(ds, f"{location}" + (f" split {s!r}" if s else ""), s) for s, ds in parts.items()]
    columns = [choose_columns(t, asked, _image_column(ds), _label_column(ds, asked))
               for t, ds in zip(tables, parts.values(), strict=True)]
    fingerprints = "+".join(str(getattr(ds, "_fingerprint", "")) for ds in parts.values())
    where = Where(local_folder(location) or Path.cwd(), follow_symlinks, exclude,
                  stamp=rowbytes.stamp(fingerprints), source=rowbytes.token("hf", name, split))
    return HfInput(parts, scan_tables(tables, columns, where, groups))


def _load(name: str, split: str | None) -> dict[str | None, Dataset]:
    try:
        import datasets
    except ImportError:
        raise missing_extra("datasets", "hf") from None
    path = Path(name)
    try:
        with _quiet(datasets):
            if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
                loaded = datasets.load_from_disk(str(path))
            else:
                loaded = datasets.load_dataset(name)
    except (FileNotFoundError, ConnectionError, ValueError, datasets.exceptions.DatasetsError) as exc:
        raise UsageError(f"cannot load the dataset {PREFIX}{name}: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, datasets.DatasetDict | datasets.Dataset):
        raise UsageError(f"{PREFIX}{name} is a streaming dataset; save it with save_to_disk first")
    parts: dict[str | None, Dataset] = (dict(loaded) if isinstance(loaded, datasets.DatasetDict)
                                        else {None: loaded})
    if split is None:
        return parts
    if split not in parts:
        raise UsageError(f"{PREFIX}{name} has no split {split!r}; its splits: "
                         f"{', '.join(str(s) for s in parts if s) or 'none'}", option="hf_split")
    return {split: parts[split]}


@contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """The library draws progress bars on stderr (the command line draws its own), and the Hub
    client logs each failed request (offline: two lines before the one-line error)."""
    was_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
        if was_on:
            datasets.enable_progress_bars()


def _table(ds: Dataset, where: str, split: str | None) -> Table:
    from datasets import ClassLabel

    names = {c: f.names for c, f in ds.features.items() if isinstance(f, ClassLabel)}
    arrow = ds.with_format("arrow")[:]  # zero-copy slices of the memory-mapped files
    return arrow_table(arrow, where, split, names)


def _image_column(ds: Dataset) -> str | None:
    from datasets import Image

    return next((c for c, f in ds.features.items() if isinstance(f, Image)), None)


def _label_column(ds: Dataset, asked: Columns) -> str | None:
    from datasets import ClassLabel

    if asked.label is not None or "label" in ds.features:
        return None
    labels = [c for c, f in ds.features.items() if isinstance(f, ClassLabel)]
    return labels[0] if len(labels) == 1 else None


def write_selection(hf: HfInput, rows: Sequence[Mapping[str, Any]], folder: Path) -> Path:
    """The selected rows, each split's in its order, saved with save_to_disk."""
    import datasets

    chosen: dict[int, list[int]] = {}
    for r in rows:
        if r["status"] == "selected":
            table, row = hf.scanned.origin[r["path"]]
            chosen.setdefault(table, []).append(row)
    subsets = {split: ds.select(sorted(chosen.get(t, []))) for t, (split, ds) in enumerate(hf.parts.items())}
    out = folder / SELECTION_FOLDER
    with _quiet(datasets):
        if None in subsets:
            subsets[None].save_to_disk(str(out))
        else:
            datasets.DatasetDict({str(s): d for s, d in subsets.items()}).save_to_disk(str(out))
    return out
