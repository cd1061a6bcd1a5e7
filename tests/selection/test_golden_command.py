"""The golden selection through the whole command: `repsample select examples/fashion` on the
stored vectors (--embeddings, so no model runs) picks exactly the images that
test_selection_golden.py holds for the selector alone. Moving code between stages must not
change a single pick, nor the chosen k."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_golden import DATA, GOLDEN

from conftest import EXAMPLE
from repsample.cli import cli


@pytest.mark.filterwarnings("error::RuntimeWarning")  # float16 vectors once overflowed a clip
def test_the_command_picks_the_golden_selection(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["select", str(EXAMPLE), str(out), "--per-class", "20",
                                      "--embeddings", str(DATA), "--mode", "none"])
    assert result.exit_code == 0, result.output
    picked: dict[str, list[str]] = defaultdict(list)
    with (out / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["status"] == "selected":
                picked[row["group"]].append(row["path"].split("/", 2)[2])
    assert {g: sorted(p) for g, p in picked.items()} == {g: names for g, (_, names) in GOLDEN.items()}
    groups = json.loads((out / "run.json").read_text())["groups"]
    assert {g: groups[g]["k"] for g in GOLDEN} == {g: k for g, (k, _) in GOLDEN.items()}
