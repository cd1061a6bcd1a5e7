"""--total N --balance equal|proportional|sqrt: one budget for the whole run, split across groups
by the allocation rules (repsample.selection.allocate), each group giving at most what it has."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FAST_ARGS, FAST_MODEL, TreeFactory
from repsample.cli import cli
from repsample.config import SelectConfig
from repsample.errors import UsageError
from repsample.pipeline import select
from repsample.selection.allocate import allocate

SIZES = {"a": 30, "b": 4, "c": 12}


def test_equal_is_as_even_as_the_data_allows() -> None:
    config = SelectConfig(total=30, balance="equal")
    assert config.budgets([30, 4, 20]) == [13, 4, 13]  # b gives all it has, a and c share the rest
    assert SelectConfig(total=100).budgets([30, 4, 12]) == [30, 4, 12]  # more than there is: all
    assert sum(SelectConfig(total=2).budgets([30, 4, 12])) == 2  # fewer than groups: some get none


@pytest.mark.parametrize("balance", ["equal", "proportional", "sqrt"])
def test_a_run_keeps_the_total_split_by_the_rule(make_tree: TreeFactory, tmp_path: Path,
                                                  cache_path: Path, balance: str) -> None:
    root = make_tree(SIZES)
    result = select(root, tmp_path / "out", total=20, balance=balance, cache=cache_path, k_min=2,
                    k_max=3, report=False, **FAST_MODEL)
    expected = allocate(list(SIZES.values()), 20, balance).tolist()
    assert [g.selected for g in result.groups] == expected and sum(expected) == 20
    record = json.loads(result.run_record_path.read_text())
    assert record["parameters"]["total"] == 20 and record["parameters"]["balance"] == balance
    assert record["totals"]["selected"] == 20


def test_a_listing_with_a_total(make_tree: TreeFactory, tmp_path: Path, cache_path: Path) -> None:
    root = make_tree(SIZES)
    listing = root / "labels.csv"
    with open(listing, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows([p.relative_to(root).as_posix(), p.parent.name] for p in sorted(root.rglob("*.jpg")))
    result = select(listing, tmp_path / "out", total=10, cache=cache_path, k_min=2, k_max=3,
                    report=False, **FAST_MODEL)
    assert [g.selected for g in result.groups] == [4, 3, 3]  # the remainder to the largest group


def test_a_group_with_no_share_selects_nothing(make_tree: TreeFactory, tmp_path: Path,
                                               cache_path: Path) -> None:
    result = select(make_tree(SIZES), tmp_path / "out", total=2, cache=cache_path, report=False,
                    **FAST_MODEL)
    assert sorted(g.selected for g in result.groups) == [0, 1, 1]
    assert [g.note for g in result.groups if not g.selected] == [
        "no share of --total: the other groups took it"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--total", "10", "--per-class", "3"], "give one of --per-class, --fraction or --total"),
        (["--total", "10", "--fraction", "0.5"], "not --fraction and --total"),
        (["--balance", "sqrt"], "--balance needs --total"),
        (["--total", "0"], "--total must be at least 1"),
        (["--total", "5", "--balance", "even"], "'even'"),
    ],
)
def test_bad_budgets_are_one_line(make_tree: TreeFactory, tmp_path: Path, args: list[str],
                                  needle: str) -> None:
    result = CliRunner().invoke(cli, ["select", str(make_tree({"a": 2})), str(tmp_path / "out"), *args,
                                      *FAST_ARGS], catch_exceptions=False)
    assert result.exit_code == 2 and needle in result.output, result.output


def test_balance_without_total_is_refused_in_python() -> None:
    with pytest.raises(UsageError, match="balance needs total"):
        SelectConfig(balance="equal").validate()
