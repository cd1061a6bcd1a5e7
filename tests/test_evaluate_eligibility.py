"""evaluate's random baseline draws from the images the selector could pick, as the manifest's
``reason`` column says: an outlier --drop-outliers set aside is never drawn (evaluate once
recomputed eligibility from duplicate_of/leak_with and ignored --drop-outliers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from conftest import make_image
from repsample.cli import cli
from repsample.evaluate import load_groups
from repsample.output.records import read_run

FAST = ["--no-report", "-q"]
SEEDS = 5


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_the_random_baseline_never_draws_an_outlier_select_set_aside(tmp_path: Path) -> None:
    root, out, cache = tmp_path / "data", tmp_path / "out", tmp_path / "cache.sqlite"
    for g, group in enumerate(("train/a", "train/b")):
        for i in range(20):
            make_image(root / group / f"img_{i:02d}.png", seed=100 * g + i)
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    vectors = tmp_path / "vectors.npz"  # vectors from elsewhere: no model to run
    np.savez(vectors, vectors=np.random.default_rng(0).normal(size=(len(paths), 16)), paths=paths)
    code, text = run("select", str(root), str(out), "--per-class", "4", "--k-min", "2", "--k-max", "3",
                     "--drop-outliers", "0.3", "--cache", str(cache), "--embeddings", str(vectors), *FAST)
    assert code == 0, text
    code, text = run("evaluate", str(out), "--seeds", str(SEEDS))
    assert code == 0, text
    assert json.loads((out / "evaluation.json").read_text())["seeds"] == SEEDS

    record = read_run(out)
    outliers = {r.path for r in record.manifest.rows if r.reason == "outlier"}
    assert len(outliers) == 12  # 30 % of each group's 20 images
    for group in load_groups(record, cache):
        eligible = {group.paths[i] for i in group.eligible}
        assert not eligible & outliers, group.name
        assert len(eligible) == 14, group.name
        for seed in range(SEEDS):  # the subsets evaluate scored random against
            drawn = {group.paths[i] for i in group.random_subset(seed)}
            assert len(drawn) == 4 and drawn <= eligible, (group.name, seed)
