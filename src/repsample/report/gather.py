"""Gather: what a run left in OUTPUT (manifest, run record, optional extras), for the report.

Every file is read and checked by repsample.output.records, the one reader of OUTPUT."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repsample.output.layout import SCORE_FIELDS
from repsample.output.outcome import GroupResult
from repsample.output.records import (
    ManifestRow,
    RunRecord,
    Scores,
    read_check,
    read_evaluation,
    read_run,
)

Item = ManifestRow  # one manifest row, checked
_HEX = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True)
class ScoreColumn:
    label: str  # in the enlarged view
    short: str  # a column title in the image lists
    about: str  # how to read it


# How the report shows the manifest's per-image scores (SCORE_FIELDS, issue 15); absent or
# empty, none is shown.
SCORE_COLUMNS = dict(zip(SCORE_FIELDS, (
    ScoreColumn("typicality", "typical", "higher = more typical"),
    ScoreColumn("outlier score", "outlier", "higher = more unusual"),
    ScoreColumn("uniqueness", "unique", "distance to the nearest other image of its group, "
                "higher = more unique"),
    ScoreColumn("duplicate similarity", "dup sim", "cosine similarity of its nearest duplicate"),
), strict=True))


@dataclass(frozen=True)
class ReportGroup:
    """One group's rows and what the run recorded for it."""

    items: list[Item]
    result: GroupResult  # run.json's figures: k, silhouettes, seconds, note, ...

    @property
    def name(self) -> str:
        return self.result.name

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
    record: RunRecord
    groups: list[ReportGroup]
    evaluation: dict[str, Any] | None = None  # shown: it scores this selection, or does not say
    check: list[dict[str, str]] | None = field(default=None, repr=False)
    evaluation_state: str | None = None  # records.Evaluation.state; "stale" is never shown
    scores: dict[str, Scores] = field(default_factory=dict, repr=False)  # by manifest path
    score_columns: tuple[str, ...] = ()  # the SCORE_COLUMNS the manifest has

    def scores_of(self, item: Item) -> Scores | None:
        return self.scores.get(item.path)

    @property
    def input_dir(self) -> Path | None:
        value = self.record.input
        return Path(value) if value else None


def read_run_data(output_dir: Path) -> RunData:
    """Read OUTPUT's manifest and run record; raise RepsampleError if they are missing or bad."""
    run = read_run(output_dir)
    evaluation = read_evaluation(run)
    scores, columns = run.manifest.scores()
    return RunData(
        output=output_dir,
        record=run.record,
        groups=_groups(run.manifest.rows, run.record.groups),
        evaluation=None if evaluation is None or evaluation.state == "stale" else evaluation.data,
        check=read_check(run),
        evaluation_state=None if evaluation is None else evaluation.state,
        scores=scores,
        score_columns=columns,
    )


def load_vectors(cache_path: Path, key: str, hashes: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The cached embeddings of these contents, or None when the cache is not there to ask."""
    from repsample.cache import ContentCache

    if not key or not cache_path.is_file():  # ContentCache would create an empty one
        return None
    with ContentCache(cache_path, read_only=True) as cache:  # run.json may name any file
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


def _groups(items: Iterable[Item], recorded: dict[str, GroupResult]) -> list[ReportGroup]:
    """Every group run.json records (records.read_run checked that the manifest's are among them),
    by name, with its rows."""
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    return [ReportGroup(by_group.get(name, []), recorded[name]) for name in sorted(recorded)]
