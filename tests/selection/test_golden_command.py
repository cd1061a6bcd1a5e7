"""The golden selection through the whole command: `repsample select examples/fashion --strategy
herding --allocation proportional` (v0.2's default) on the stored vectors (--embeddings, so no
model runs) picks exactly the images that test_golden.py holds for the selector alone. Moving code
between stages must not change a single pick, nor the chosen k. The default command picks what
the default selector picks on the same vectors."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_golden import DATA, GOLDEN, groups

from conftest import EXAMPLE
from repsample.cli import cli
from repsample.config import SelectConfig
from repsample.selection.strategies import STRATEGIES


@pytest.mark.filterwarnings("error::RuntimeWarning")  # float16 vectors once overflowed a clip
def test_the_command_picks_the_golden_selection(tmp_path: Path) -> None:
    out = tmp_path / "out"
    picked = run_select(out, "--strategy", "herding", "--allocation", "proportional")
    assert {g: sorted(p) for g, p in picked.items()} == {g: names for g, (_, names) in GOLDEN.items()}
    groups = json.loads((out / "run.json").read_text())["groups"]
    assert {g: groups[g]["k"] for g in GOLDEN} == {g: k for g, (k, _) in GOLDEN.items()}


def run_select(out: Path, *options: str) -> dict[str, list[str]]:
    """`repsample select` on the example on the stored vectors; each group's selected file names."""
    result = CliRunner().invoke(cli, ["select", str(EXAMPLE), str(out), "--per-class", "20",
                                      "--embeddings", str(DATA), "--mode", "none", *options])
    assert result.exit_code == 0, result.output
    picked: dict[str, list[str]] = defaultdict(list)
    with (out / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["status"] == "selected":
                picked[row["group"]].append(row["path"].split("/", 2)[2])
    return picked


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_the_default_command_picks_what_the_default_selector_picks(tmp_path: Path) -> None:
    """The pipeline builds the default strategy from SelectConfig's defaults, on each group's
    vectors in path order: the same picks as that selector fitted on them alone."""
    picked = run_select(tmp_path / "out")
    c = SelectConfig()
    for group, (X, names) in groups().items():
        selector = STRATEGIES.get(c.strategy)(20, allocation=c.allocation, k_min=c.k_min,
                                              k_max=c.k_max, silhouette_sample=c.silhouette_sample,
                                              random_state=c.seed)
        assert sorted(picked[group]) == sorted(names[i] for i in selector.fit(X).selected_indices_)
