"""Gather: what a run left in OUTPUT (manifest, run record, optional extras), for the report.

The manifest, run record and evaluation are read and checked by repsample.output.records."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repsample.output.export import read_csv_rows, unescape_cell
from repsample.output.records import GroupRecord, ManifestRow, read_evaluation, read_run

logger = logging.getLogger(__name__)

CHECK = "check.csv"
Item = ManifestRow  # one manifest row, checked
_HEX = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True)
class ScoreColumn:
    label: str  # in the enlarged view
    short: str  # a column title in the image lists
    about: str  # how to read it


# Per-image scores a run may add to manifest.csv (issue 15); absent or empty, none is shown.
SCORE_COLUMNS = {
    "typicality": ScoreColumn("typicality", "typical", "higher = more typical"),
    "outlier_score": ScoreColumn("outlier score", "outlier", "higher = more unusual"),
    "uniqueness": ScoreColumn("uniqueness", "unique", "distance to the nearest other image of its "
                              "group, higher = more unique"),
    "duplicate_similarity": ScoreColumn("duplicate similarity", "dup sim",
                                        "cosine similarity of its nearest duplicate"),
}
REASON = "reason"


@dataclass(frozen=True)
class Scores:
    """One image's optional manifest scores (None: column absent or cell empty) and reason."""

    values: dict[str, float | None]
    reason: str = ""

    def get(self, column: str) -> float | None:
        return self.values.get(column)


@dataclass(frozen=True)
class ReportGroup:
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
    groups: list[ReportGroup]
    evaluation: dict[str, Any] | None = None  # shown: it scores this selection, or does not say
    check: list[dict[str, str]] | None = field(default=None, repr=False)
    evaluation_state: str | None = None  # records.Evaluation.state; "stale" is never shown
    scores: dict[str, Scores] = field(default_factory=dict, repr=False)  # by manifest path
    score_columns: tuple[str, ...] = ()  # the SCORE_COLUMNS the manifest has

    def scores_of(self, item: Item) -> Scores | None:
        return self.scores.get(item.path)

    @property
    def cache_key(self) -> str:
        return str(self.record.get("model", {}).get("cache_key", ""))

    @property
    def input_dir(self) -> Path | None:
        value = self.record.get("input")
        return Path(value) if value else None


def read_run_data(output_dir: Path) -> RunData:
    """Read OUTPUT's manifest and run record; raise RepsampleError if they are missing or bad."""
    run = read_run(output_dir)
    evaluation = read_evaluation(run)
    scores, columns = read_scores(run.manifest.path)
    return RunData(
        output=output_dir,
        record=run.record.data,
        groups=_groups(run.manifest.rows, run.record.groups),
        evaluation=None if evaluation is None or evaluation.state == "stale" else evaluation.data,
        check=_read_csv(output_dir / CHECK),
        evaluation_state=None if evaluation is None else evaluation.state,
        scores=scores,
        score_columns=columns,
    )


def load_vectors(cache_path: Path, key: str, hashes: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The cached embeddings of these contents, or None when the cache is not there to ask."""
    from repsample.cache import EmbeddingCache

    if not key or not cache_path.is_file():  # EmbeddingCache would create an empty one
        return None
    with EmbeddingCache(cache_path, read_only=True) as cache:  # run.json may name any file
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


def _groups(items: Iterable[Item], recorded: dict[str, GroupRecord]) -> list[ReportGroup]:
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    out = []
    for name in sorted(set(by_group) | set(recorded)):
        info = recorded.get(name)
        out.append(ReportGroup(
            name=name,
            items=by_group.get(name, []),
            k=info.k if info else 0,
            silhouettes=dict(info.silhouettes) if info else {},
            silhouette_sample=info.silhouette_sample if info else None,
            seconds=dict(info.seconds) if info else {},
            note=info.note if info else None,
        ))
    return out


def read_scores(path: Path) -> tuple[dict[str, Scores], tuple[str, ...]]:
    """The optional score columns of a manifest.csv, by path, and which of them hold a score.

    Read by column name beside records' checked rows, so the report shows the scores whichever
    columns a run wrote, and none for a manifest without them (or with them all empty). A cell
    that is not a number shows as no score rather than failing the report.
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            columns = tuple(c for c in SCORE_COLUMNS if c in header)
            if not columns and REASON not in header:
                return {}, ()
            out = {unescape_cell(row.get("path") or ""):  # as export.escape_cell wrote it
                   Scores({c: _number(row.get(c)) for c in columns}, row.get(REASON) or "")
                   for row in reader}
    except (OSError, csv.Error) as exc:
        logger.warning("no scores from %s: %s", path, exc)
        return {}, ()
    held = tuple(c for c in columns if any(s.values[c] is not None for s in out.values()))
    return out, held


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and np.isfinite(number) else None


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    try:
        return read_csv_rows(path, errors="strict")  # cells as written (export.escape_cell)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("skipping %s: %s", path, exc)
        return None
