"""Gather: read what a run left in OUTPUT (manifest, run record, optional extras) into records."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repsample.errors import RepsampleError
from repsample.export import MANIFEST, RUN_RECORD, read_manifest

logger = logging.getLogger(__name__)

EVALUATION = "evaluation.json"
CHECK = "check.csv"
_HEX = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True)
class Item:
    """One manifest row, typed."""

    path: str
    group: str
    status: str  # selected | not_selected | error
    cluster: int | None
    distance: float | None
    rank: int | None
    hash: str  # "" when the file could not be hashed
    error: str
    duplicate_of: str = ""  # the image of its group it repeats (repsample check / dedup)
    leak_with: str = ""  # its closest match in another split

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GroupData:
    """One group's rows and the figures the run recorded for it."""

    name: str
    items: list[Item]
    k: int
    silhouettes: dict[int, float]
    silhouette_sample: int | None
    seconds: dict[str, float]
    note: str | None

    @property
    def selected(self) -> list[Item]:
        return [i for i in self.items if i.status == "selected"]

    @property
    def errors(self) -> list[Item]:
        return [i for i in self.items if i.status == "error"]

    def clusters(self) -> dict[int, list[Item]]:
        """Valid items by cluster label, labels sorted, items as in the manifest."""
        out: dict[int, list[Item]] = {}
        for item in self.items:
            if item.status != "error":
                out.setdefault(item.cluster if item.cluster is not None else -1, []).append(item)
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class RunData:
    """Everything the report shows, read from one output folder."""

    output: Path
    record: dict[str, Any]
    groups: list[GroupData]
    evaluation: dict[str, Any] | None = None
    check: list[dict[str, str]] | None = field(default=None, repr=False)

    @property
    def cache_key(self) -> str:
        return str(self.record.get("model", {}).get("cache_key", ""))

    @property
    def input_dir(self) -> Path | None:
        value = self.record.get("input")
        return Path(value) if value else None


def gather(output_dir: Path) -> RunData:
    """Read OUTPUT's manifest and run record; raise RepsampleError if they are missing or bad."""
    manifest, run_record = output_dir / MANIFEST, output_dir / RUN_RECORD
    for needed in (manifest, run_record):
        if not needed.is_file():
            raise RepsampleError(
                f"{needed} not found; point `repsample report` at the OUTPUT of a finished "
                "`repsample select` run"
            )
    try:
        record = json.loads(run_record.read_text(encoding="utf-8"))
        rows = read_manifest(manifest)
    except (OSError, ValueError, csv.Error) as exc:
        raise RepsampleError(
            f"cannot read {output_dir}'s run files ({exc}); rerun `repsample select`"
        ) from None
    if not isinstance(record, dict):
        raise RepsampleError(f"{run_record} is not a run record; rerun `repsample select`")
    items = [_item(row) for row in rows]
    return RunData(
        output=output_dir,
        record=record,
        groups=_groups(items, record.get("groups") or {}),
        evaluation=_read_json(output_dir / EVALUATION),
        check=_read_csv(output_dir / CHECK),
    )


def load_vectors(cache_path: Path, key: str, hashes: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The cached embeddings of these contents, or None when the cache is not there to ask."""
    from repsample.cache import EmbeddingCache

    if not key or not cache_path.is_file():  # EmbeddingCache would create an empty one
        return None
    with EmbeddingCache(cache_path) as cache:
        entries = cache.get_many(list(hashes), key)
    return {h: e.vector for h, e in entries.items() if e.vector is not None}


def thumbnail_hash(item: Item) -> str | None:
    """The hash to name a thumbnail by, if it is a safe file name (the manifest is user-editable)."""
    return item.hash if item.status != "error" and _HEX.fullmatch(item.hash) else None


def items_by_path(run: RunData) -> dict[str, Item]:
    return {i.path: i for g in run.groups for i in g.items}


def match_item(value: str, by_path: dict[str, Item], input_dir: Path | None) -> Item | None:
    """The manifest row a check.csv cell names: a path relative to INPUT, or absolute under it."""
    if value in by_path:
        return by_path[value]
    if input_dir is not None and value.startswith("/"):
        try:
            return by_path.get(Path(value).relative_to(input_dir).as_posix())
        except ValueError:
            return None
    return None


def _item(row: dict[str, str]) -> Item:
    return Item(
        path=row.get("path", ""),
        group=row.get("group", ""),
        status=row.get("status", ""),
        cluster=_int(row.get("cluster")),
        distance=_float(row.get("distance")),
        rank=_int(row.get("rank")),
        hash=(row.get("hash") or "").lower(),
        error=row.get("error") or "",
        duplicate_of=row.get("duplicate_of") or "",
        leak_with=row.get("leak_with") or "",
    )


def _groups(items: Iterable[Item], recorded: dict[str, Any]) -> list[GroupData]:
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    out = []
    for name in sorted(set(by_group) | set(recorded)):
        info = recorded.get(name) or {}
        out.append(GroupData(
            name=name,
            items=by_group.get(name, []),
            k=int(info.get("k") or 0),
            silhouettes={int(k): float(v) for k, v in (info.get("silhouette") or {}).items()},
            silhouette_sample=info.get("silhouette_sample"),
            seconds={str(k): float(v) for k, v in (info.get("seconds") or {}).items()},
            note=info.get("note"),
        ))
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    """An optional extra file: shown if readable, skipped with a warning if not."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("skipping %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else {"value": data}


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("skipping %s: %s", path, exc)
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
