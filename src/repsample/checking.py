"""The ``check`` orchestrator: the hygiene pass on its own, written to OUTPUT/check.csv and
check.json, each group's outliers to OUTPUT/outliers.csv and its image quality issues to
OUTPUT/issues.csv. The same pass runs inside ``select``
(dataset.py), and the same scores fill its manifest (pipeline.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repsample import fsio
from repsample.config import SelectConfig
from repsample.dataset import Dataset, open_dataset, scored_groups
from repsample.errors import UsageError
from repsample.hygiene.files import OUTLIER_FIELDS, write_check_csv
from repsample.hygiene.findings import Findings
from repsample.hygiene.outliers import LISTED_SHARE
from repsample.hygiene.quality import CHECKS, quality_summary
from repsample.inputs.dispatch import locate
from repsample.inputs.guards import check_cache_apart, check_input
from repsample.output.files import write_atomic, write_csv
from repsample.output.layout import CHECK_CSV, CHECK_JSON, ISSUES_CSV, OUTLIERS_CSV, format_distance
from repsample.output.publish import OutputTransaction
from repsample.progress import Progress, SilentProgress


@dataclass(frozen=True)
class CheckResult:
    """The findings and where they were written."""

    findings: Findings
    csv_path: Path
    json_path: Path
    rows: int
    outliers_path: Path
    outliers: int  # images listed in outliers.csv
    issues_path: Path
    quality: dict[str, Any]  # hygiene.quality.quality_summary

    def summary(self) -> dict[str, object]:
        return {**self.findings.summary(), "outliers": self.outliers, "outlier_share": LISTED_SHARE,
                "quality": self.quality}


def check(
    input_dir: str | Path,
    output_dir: str | Path,
    config: SelectConfig | None = None,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> CheckResult:
    """Find unreadable files, duplicates and split leaks under input_dir; write OUTPUT/check.csv,
    each group's top outliers (``LISTED_SHARE`` of it, by outlier score) to OUTPUT/outliers.csv,
    and every image quality issue (one row per image and issue) to OUTPUT/issues.csv.

    Uses the embedding options of a SelectConfig (model, weights, engine, cache, dup_threshold,
    overwrite, ...), given as a config or as keywords; embeddings come from (and go to) the same
    cache as select's. INPUT may be an fsspec URL; OUTPUT is a local folder.
    """
    config = dataclasses.replace(config or SelectConfig(), **options)
    config.validate()
    src, target = locate(input_dir), fsio.as_location(output_dir)
    if isinstance(target, str):
        raise UsageError(f"check writes a local OUTPUT folder, not {target}", option="output_dir")
    check_input(src, target)
    check_cache_apart(config.cache_path, output_dir=target)
    with OutputTransaction(target, replace=config.overwrite) as output, \
            open_dataset(src, config, progress or SilentProgress(),
                         exclude=(output.out, output.stage)) as dataset:
        findings = dataset.findings
        rows = write_check_csv(output.stage / CHECK_CSV, findings)
        outliers = write_csv(output.stage / OUTLIERS_CSV, OUTLIER_FIELDS, _outlier_rows(dataset,
                                                                                        config.seed))
        write_csv(output.stage / ISSUES_CSV, ISSUE_FIELDS, _issue_rows(dataset))
        result = CheckResult(findings, target / CHECK_CSV, target / CHECK_JSON, rows,
                             target / OUTLIERS_CSV, outliers, target / ISSUES_CSV,
                             quality_summary(dataset.quality, dataset.quality_measured))
        record = {"input": fsio.display(src), "model": dataset.embedder.key,
                  "summary": result.summary()}
        write_atomic(output.stage / CHECK_JSON, json.dumps(record, indent=2) + "\n")
        output.publish()
    return result


def _outlier_rows(dataset: Dataset, seed: int) -> Iterator[dict[str, str]]:
    """Each group's top LISTED_SHARE by outlier score, most unusual first: outliers.csv's rows."""
    scored = scored_groups(dataset, seed)
    for group in dataset.groups:
        embedded, scores = scored[group.name]
        path_of = {r: f.rel for f, r in zip(group.files, embedded.rows, strict=True) if r is not None}
        for rank, r in enumerate(scores.top_outliers(LISTED_SHARE), start=1):
            yield {"group": group.name, "rank": str(rank), "path": path_of[r],
                   "outlier_score": format_distance(scores.outlier[r]),
                   "typicality": format_distance(scores.typicality[r]),
                   "uniqueness": format_distance(scores.uniqueness[r])}


ISSUE_FIELDS = ("group", "path", "issue", "score")
"""issues.csv: one row per image and issue, groups and paths in scan order; score: the value of
the check's score (manifest.csv's column of that name, hygiene.quality.CHECKS) that flagged it."""


def _issue_rows(dataset: Dataset) -> Iterator[dict[str, str]]:
    score_of = {c.name: c.score for c in CHECKS}
    findings = dataset.findings
    for group in dataset.groups:
        rows = [f for f in group.files if findings.file(f.rel) not in findings.errors]
        for f, image in zip(rows, dataset.quality[group.name].images, strict=True):
            for issue in image.issues:
                yield {"group": group.name, "path": f.rel, "issue": issue,
                       "score": format_distance(image.scores[score_of[issue]])}
