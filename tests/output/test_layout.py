"""OUTPUT's layout declared once (repsample.output.layout), and one group outcome type
(repsample.output.outcome.GroupResult) that select builds, run.json records, records reads back
and the report shows."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TreeFactory
from repsample import GroupResult, select
from repsample.errors import RepsampleError
from repsample.fsio import hash_file
from repsample.output import layout
from repsample.output.records import read_run
from repsample.report.gather import read_run_data

SRC = Path(__file__).parent.parent.parent / "src" / "repsample"
DECLARED = {layout.MANIFEST, layout.RUN_RECORD, layout.CHECK_CSV, layout.CHECK_JSON,
            layout.OUTLIERS_CSV, layout.REPORT, layout.REPORT_ASSETS, layout.THUMBS,
            layout.EVALUATION, layout.STATE}


def test_every_output_name_is_typed_only_in_the_layout() -> None:
    typed = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "output" / "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in DECLARED:
                typed.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert typed == []
    assert DECLARED - {layout.THUMBS} <= layout.OUTPUT_NAMES


@pytest.fixture
def selected(make_tree: TreeFactory, tmp_path: Path) -> tuple[Path, list[GroupResult]]:
    """A real select run on precomputed vectors (no model): three groups, one kept whole."""
    root = make_tree({"train/a": 9, "train/b": 7, "test/a": 2})
    hashes = sorted({hash_file(p) for p in root.rglob("*.jpg")})
    vectors = np.random.default_rng(0).normal(size=(len(hashes), 8)).astype(np.float32)
    np.savez(tmp_path / "v.npz", paths=np.array(hashes), embeddings=vectors)
    out = tmp_path / "out"
    result = select(root, out, embeddings=tmp_path / "v.npz", cache=tmp_path / "c.sqlite",
                    per_class=3, k_min=2, k_max=3, report=False)
    return out, result.groups


def test_run_json_holds_each_group_as_the_outcome_writes_it(
        selected: tuple[Path, list[GroupResult]]) -> None:
    out, groups = selected
    recorded = json.loads((out / layout.RUN_RECORD).read_text(encoding="utf-8"))["groups"]
    assert list(recorded) == [g.name for g in groups]
    for group in groups:
        assert recorded[group.name] == group.record()
        assert list(recorded[group.name]) == ["images", "errors", "valid", "k", "silhouette",
                                              "silhouette_sample", "selected", "embedded",
                                              "excluded", "outliers", "note", "seconds"]


def test_records_and_the_report_read_back_the_same_outcome(
        selected: tuple[Path, list[GroupResult]]) -> None:
    out, groups = selected
    read = read_run(out).record.groups
    for group in groups:  # what run.json keeps: silhouettes to 6 decimals, no outside links
        kept = dataclasses.replace(group, outside_links=0, silhouettes={
            k: round(v, 6) for k, v in group.silhouettes.items()})
        assert read[group.name] == kept
    assert any(g.k == 0 and g.note for g in read.values())  # the lone group, kept whole
    report = read_run_data(out)
    assert [g.result for g in report.groups] == [read[name] for name in sorted(read)]
    assert all(len(g.items) == g.result.images for g in report.groups)


def test_a_group_count_of_the_wrong_type_is_one_line(
        selected: tuple[Path, list[GroupResult]]) -> None:
    out, _ = selected
    path = out / layout.RUN_RECORD
    record = json.loads(path.read_text(encoding="utf-8"))
    name = next(iter(record["groups"]))
    del record["groups"][name]["embedded"]  # an older record: read as 0
    path.write_text(json.dumps(record), encoding="utf-8")
    assert read_run(out).record.groups[name].embedded == 0
    record["groups"][name]["excluded"] = "two"
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(RepsampleError, match=rf"groups\[{name!r}\]\.excluded is 'two', not an integer"):
        read_run(out)
