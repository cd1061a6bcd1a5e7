"""The ``check`` orchestrator: the hygiene pass on its own, written to OUTPUT/check.csv and
check.json. The same pass runs inside ``select`` (dataset.py)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repsample import fsio
from repsample.config import SelectConfig
from repsample.dataset import open_dataset
from repsample.errors import UsageError
from repsample.export import check_paths, write_atomic
from repsample.hygiene import CHECK_CSV, Findings, write_check_csv
from repsample.progress import Progress, SilentProgress
from repsample.publish import OutputTransaction

CHECK_JSON = "check.json"


@dataclass(frozen=True)
class CheckResult:
    """The findings and where they were written."""

    findings: Findings
    csv_path: Path
    json_path: Path
    rows: int

    def summary(self) -> dict[str, object]:
        return self.findings.summary()


def check(
    input_dir: str | Path,
    output_dir: str | Path,
    config: SelectConfig | None = None,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> CheckResult:
    """Find unreadable files, duplicates and split leaks under input_dir; write OUTPUT/check.csv.

    Uses the embedding options of a SelectConfig (model, weights, engine, cache, dup_threshold,
    overwrite, ...), given as a config or as keywords; embeddings come from (and go to) the same
    cache as select's. INPUT may be an fsspec URL; OUTPUT is a local folder.
    """
    config = dataclasses.replace(config or SelectConfig(), **options)
    config.validate()
    src, target = fsio.as_location(input_dir), fsio.as_location(output_dir)
    if isinstance(target, str):
        raise UsageError(f"check writes a local OUTPUT folder, not {target}", option="output_dir")
    if not isinstance(src, str):
        check_paths(src, target)
    with OutputTransaction(target, replace=config.overwrite) as output, \
            open_dataset(src, config, progress or SilentProgress(),
                         exclude=(output.out, output.stage)) as dataset:
        findings = dataset.findings
        rows = write_check_csv(output.stage / CHECK_CSV, findings)
        record = {"input": fsio.display(src), "model": dataset.embedder.key,
                  "summary": findings.summary()}
        write_atomic(output.stage / CHECK_JSON, json.dumps(record, indent=2) + "\n")
        output.publish()
    return CheckResult(findings, target / CHECK_CSV, target / CHECK_JSON, rows)
