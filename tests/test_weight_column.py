"""The manifest's ``weight`` column through the real command: `repsample select` on the stored
Fashion-MNIST vectors of examples/fashion (--embeddings, no model runs), then `repsample evaluate`
and `repsample report`. Selections may change with the default strategy: nothing here names a pick."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DATA, EXAMPLE
from repsample.cli import cli
from repsample.errors import RepsampleError
from repsample.output.layout import MANIFEST_FIELDS, UNWEIGHTED_MANIFEST_FIELDS
from repsample.output.records import read_manifest, read_run

VECTORS = DATA / "fashion_vectors.npz"


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def select(out: Path, cache: Path, *args: str) -> list[dict[str, str]]:
    run("select", str(EXAMPLE), str(out), "--embeddings", str(VECTORS), "--mode", "none",
        "--cache", str(cache), "--no-report", "-q", *args)
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def weights_by_group(rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """Each group's weights; an empty cell exactly where an image is not selected."""
    found: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        assert (row["weight"] != "") == (row["status"] == "selected"), row
        if row["weight"]:
            found[row["group"]].append(float(row["weight"]))
    return found


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("weights")
    return root / "out", select(root / "out", root / "cache.sqlite", "--per-class", "20")


def test_the_weights_of_each_group_sum_to_one(selected: tuple[Path, list[dict[str, str]]]) -> None:
    out, rows = selected
    assert tuple(rows[0]) == MANIFEST_FIELDS
    weights = weights_by_group(rows)
    assert len(weights) == 15
    for group, values in weights.items():
        assert len(values) == 20 and min(values) >= 0, group
        assert abs(sum(values) - 1) <= 1e-9, group
    # the reader takes them back as written
    manifest = read_run(out).manifest
    assert manifest.columns == MANIFEST_FIELDS
    assert sum(r.weight or 0 for r in manifest.rows if r.group == "test/Bag") == pytest.approx(1)


def test_evaluate_reports_weighted_mmd_beside_unweighted(
        selected: tuple[Path, list[dict[str, str]]]) -> None:
    out, _ = selected
    text = run("evaluate", str(out), "--seeds", "2")
    assert "weighted" in text
    result = json.loads((out / "evaluation.json").read_text())
    for name, group in result["groups"].items():
        mine, chance = group["selection"], group["random"]
        assert mine["mmd_weighted"] is not None and mine["mmd"] is not None, name
        assert chance["mmd_weighted"]["mean"] is not None, name
    overall = result["overall"]["selection"]
    assert overall["mmd_weighted"] < overall["mmd"]  # the weights bring the subset closer
    run("report", str(out))
    assert "MMD (weighted)" in (out / "report.html").read_text(encoding="utf-8")


def test_a_manifest_without_weights_still_reads_and_evaluates(
        selected: tuple[Path, list[dict[str, str]]], tmp_path: Path) -> None:
    """A manifest from before the column: read as it is, and evaluate gives no weighted figure."""
    out, rows = selected
    older = tmp_path / "older"
    older.mkdir()
    (older / "run.json").write_bytes((out / "run.json").read_bytes())
    with open(older / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, UNWEIGHTED_MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    manifest = read_manifest(older / "manifest.csv")
    assert manifest.columns == UNWEIGHTED_MANIFEST_FIELDS
    assert all(r.weight is None for r in manifest.rows)
    run("evaluate", str(older), "--seeds", "1")
    result = json.loads((older / "evaluation.json").read_text())
    assert all(g["selection"]["mmd_weighted"] is None and g["selection"]["mmd"] is not None
               and g["random"]["mmd_weighted"]["mean"] is None for g in result["groups"].values())
    assert result["overall"]["selection"]["mmd_weighted"] is None


def test_a_group_kept_whole_is_weighted_uniformly(tmp_path: Path) -> None:
    rows = select(tmp_path / "out", tmp_path / "cache.sqlite", "--per-class", "1000")
    for group, values in weights_by_group(rows).items():
        n = sum(r["group"] == group for r in rows)
        assert values == [1 / n] * n, group  # 1/n exactly, written to the last digit


def test_grown_selection_weighs_every_selected_row(tmp_path: Path) -> None:
    """--keep: the weights share each group among the kept and the added picks together."""
    cache = tmp_path / "cache.sqlite"
    first = select(tmp_path / "first", cache, "--per-class", "8")
    grown = select(tmp_path / "grown", cache, "--per-class", "15", "--keep",
                   str(tmp_path / "first" / "manifest.csv"))
    kept = {r["path"] for r in first if r["status"] == "selected"}
    assert kept < {r["path"] for r in grown if r["status"] == "selected"}
    for group, values in weights_by_group(grown).items():
        assert len(values) == 15 and abs(sum(values) - 1) <= 1e-9, group


@pytest.mark.parametrize(("weight", "problem"), [
    ("1.5", "above 1"), ("-0.1", "not a number >= 0"), ("heavy", "not a number"), ("nan", "not"),
])
def test_a_bad_weight_is_refused_with_its_line(selected: tuple[Path, list[dict[str, str]]],
                                               tmp_path: Path, weight: str, problem: str) -> None:
    _, rows = selected
    edited = [dict(rows[0], status="selected", weight=weight), *rows[1:]]
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(edited)
    with pytest.raises(RepsampleError, match=f"line 2: weight .*{problem}"):
        read_manifest(path)
