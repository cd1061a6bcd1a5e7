"""Options declared once: every command's click options are built from one declaration (a
dataclass of config.option fields), and a strategy's own parameters (n_neighbors, cover_share)
reach its selector from SelectConfig.strategy_params and `--strategy-params NAME=VALUE`, checked
against the selector's own constraints: a bad name or value is one line, exit 2."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FAST_ARGS, TreeFactory
from repsample.cli import cli
from repsample.config import (
    CHECK_OPTIONS,
    PROJECTIONS,
    EvaluateOptions,
    ReportOptions,
    SelectConfig,
    VerifyOptions,
    parse_strategy_params,
)
from repsample.errors import UnknownNameError, UsageError, flag_name
from repsample.params import OneOf
from repsample.selection.names import PARAMETERS
from repsample.selection.strategies import STRATEGIES, ClusterSelector

DECLARED = [
    ("select", SelectConfig, [f.name for f in dataclasses.fields(SelectConfig)]),
    ("check", SelectConfig, list(CHECK_OPTIONS)),
    ("report", ReportOptions, [f.name for f in dataclasses.fields(ReportOptions)]),
    ("evaluate", EvaluateOptions, [f.name for f in dataclasses.fields(EvaluateOptions)]),
    ("verify", VerifyOptions, [f.name for f in dataclasses.fields(VerifyOptions)]),
]
DISPLAY_ONLY = {"quiet", "help"}  # how a command talks, not what it does


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def one_line(code: int, out: str) -> str:
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    return lines[0]


# -- every command's options from one declaration -------------------------------------------------

@pytest.mark.parametrize(("command", "declared", "names"), DECLARED, ids=[d[0] for d in DECLARED])
def test_a_commands_options_are_its_declaration(command: str, declared: type[Any],
                                                names: list[str]) -> None:
    params = [p for p in cli.commands[command].params
              if isinstance(p, click.Option) and p.name not in DISPLAY_ONLY]
    assert [p.name for p in params] == names
    fields = {f.name: f for f in dataclasses.fields(declared)}
    for param in params:
        field = fields[str(param.name)]
        assert flag_name(field.name) in param.opts
        assert param.help is not None and param.help.startswith(field.metadata["help"])
        constraint = field.metadata["constraint"]
        if isinstance(constraint, OneOf) and field.name != "model":  # model: also onnx:PATH
            assert isinstance(param.type, click.Choice)
            assert list(param.type.choices) == list(constraint.names())
        if field.default is not dataclasses.MISSING \
                and field.name not in ("extensions", "per_class", "drop_issues") \
                and not field.metadata["repeatable"]:
            assert param.default == field.default, field.name


def test_projection_choices_are_the_reports_one_list() -> None:
    from repsample.report import embedmap

    projection = next(p for p in cli.commands["report"].params if p.name == "projection")
    assert isinstance(projection.type, click.Choice)
    assert tuple(projection.type.choices) == PROJECTIONS
    assert embedmap.PROJECTIONS is PROJECTIONS


@given(st.text(min_size=1, max_size=12).filter(lambda t: t not in PROJECTIONS))
def test_the_report_refuses_any_other_projection(method: str) -> None:
    from repsample.report.embedmap import check_projection

    with pytest.raises(UnknownNameError, match=r"^projection .* is unknown; choose one of: auto, pca, umap$"):
        check_projection(method)


# -- a strategy's own parameters -------------------------------------------------------------------

@pytest.mark.parametrize("name", STRATEGIES.names())
def test_a_strategy_declares_its_parameters_once(name: str) -> None:
    """The light listing (names.PARAMETERS) is the class's own declaration; every __init__
    parameter SelectConfig has no field for is one of them, with its default and constraint."""
    selector = STRATEGIES.get(name)
    assert selector.tunable == PARAMETERS.get(name, ())
    own = set(selector().get_params()) - set(ClusterSelector().get_params())
    assert own == {t.name for t in selector.tunable}
    for tunable in selector.tunable:
        assert selector._parameter_constraints[tunable.name] is tunable.constraint
        assert selector().get_params()[tunable.name] == tunable.default


def test_strategies_lists_parameters_without_scikit_learn() -> None:
    code = ("import sys\nsys.argv = ['repsample', 'strategies', '--parameters']\n"
            "from repsample.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('sklearn' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *listing, loaded = done.stdout.strip().splitlines()
    assert loaded == "False", done.stdout
    for name in STRATEGIES.names():
        shown = listing.index(next(line for line in listing if line.startswith(f"{name} ")))
        for offset, tunable in enumerate(PARAMETERS.get(name, ()), start=1):
            assert listing[shown + offset].strip() == tunable.describe()
    assert "n_neighbors=20  an integer >= 1: " in done.stdout
    assert "cover_share=0.2  a number in [0, 1]: " in done.stdout


def selected(out: Path) -> set[str]:
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        return {row["path"] for row in csv.DictReader(fh) if row["status"] == "selected"}


def test_a_strategy_param_reaches_the_selector(make_tree: TreeFactory, tmp_path: Path,
                                               cache_path: Path) -> None:
    """Two clusters of 20 images: 3 neighbours make other images the most typical than the
    default 20 (capped at 19). The run record holds the parameters only when set."""
    root = make_tree({"a": 40})
    common = ["--strategy", "typical", "--k-min", "2", "--k-max", "2", "--per-class", "3",
              "--no-report", "--cache", str(cache_path), "-q", *FAST_ARGS]

    def run(name: str, *extra: str) -> Path:
        code, out = invoke("select", str(root), str(tmp_path / name), *common, *extra)
        assert code == 0, out
        return tmp_path / name

    default, three = run("default"), run("three", "--strategy-params", "n_neighbors=3")
    spelt_out = run("spelt", "--strategy-params", "n_neighbors=20")
    assert selected(default) != selected(three)
    assert selected(default) == selected(spelt_out)
    record = json.loads((three / "run.json").read_text())["parameters"]
    assert record["strategy_params"] == {"n_neighbors": 3}
    assert "strategy_params" not in json.loads((default / "run.json").read_text())["parameters"]


def test_cover_share_zero_is_refine_from_the_python_api(make_tree: TreeFactory, tmp_path: Path,
                                                        cache_path: Path) -> None:
    import repsample

    root = make_tree({"a": 40})
    options: dict[str, Any] = {"k_min": 2, "k_max": 2, "per_class": 4, "report": False,
                               "cache": cache_path, "model": "resnet18", "weights": "random"}
    repsample.select(root, tmp_path / "refine", strategy="refine", **options)
    repsample.select(root, tmp_path / "zero", strategy="cover", strategy_params={"cover_share": 0.0},
                     **options)
    assert selected(tmp_path / "zero") == selected(tmp_path / "refine")


# -- a bad name or value: one line, exit 2 ----------------------------------------------------------

def refused(tmp_path: Path, strategy: str, *pairs: str) -> str:
    args = [arg for pair in pairs for arg in ("--strategy-params", pair)]
    return one_line(*invoke("select", str(tmp_path / "in"), str(tmp_path / "out"), "-q",
                            "--strategy", strategy, *args))


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True).filter(lambda n: n != "n_neighbors"))
def test_an_unknown_name_is_one_line_naming_the_choices(tmp_path_factory: pytest.TempPathFactory,
                                                        name: str) -> None:
    tmp = tmp_path_factory.mktemp("unknown")
    assert refused(tmp, "typical", f"{name}=3") == (
        f"Error: --strategy-params {name!r} is not a parameter of --strategy typical; "
        "choose one of: n_neighbors")
    assert refused(tmp, "herding", f"{name}=3").startswith(
        f"Error: --strategy-params {name!r} is not a parameter of --strategy herding, which takes "
        "none; `repsample strategies --parameters`")
    assert not (tmp / "out").exists()


@settings(max_examples=40, deadline=None)
@given(st.integers(max_value=0))
def test_a_bad_count_is_one_line_naming_what_is_allowed(tmp_path_factory: pytest.TempPathFactory,
                                                        value: int) -> None:
    tmp = tmp_path_factory.mktemp("count")
    for strategy in ("typical", "facility"):
        assert refused(tmp, strategy, f"n_neighbors={value}") == \
            f"Error: --strategy-params n_neighbors must be at least 1, got {value} [default: 20]"


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.floats(min_value=1.0, exclude_min=True, allow_infinity=False),
                 st.floats(max_value=0.0, exclude_max=True, allow_infinity=False)))
def test_a_share_outside_zero_one_is_one_line(tmp_path_factory: pytest.TempPathFactory,
                                              value: float) -> None:
    line = refused(tmp_path_factory.mktemp("share"), "cover", f"cover_share={value!r}")
    assert line.startswith("Error: --strategy-params cover_share must be in [0, 1], got ")
    assert line.endswith(" [default: 0.2]")


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r"),
               min_size=1, max_size=10).filter(lambda t: _not_a_number(t.strip())))
def test_a_value_that_is_no_number_is_one_line(tmp_path_factory: pytest.TempPathFactory,
                                               text: str) -> None:
    tmp = tmp_path_factory.mktemp("text")
    assert refused(tmp, "typical", f"n_neighbors={text}").startswith(
        "Error: --strategy-params n_neighbors must be an integer, got ")
    assert refused(tmp, "cover", f"cover_share={text}").startswith(
        "Error: --strategy-params cover_share must be a number, got ")


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


def test_a_malformed_or_repeated_pair_is_one_line(tmp_path: Path) -> None:
    assert refused(tmp_path, "typical", "n_neighbors") == \
        "Error: --strategy-params takes NAME=VALUE, got 'n_neighbors' (e.g. n_neighbors=20)"
    assert refused(tmp_path, "cover", "cover_share=0.1", "cover_share=0.3") == \
        "Error: --strategy-params gives cover_share twice; give it once"


# -- from Python -----------------------------------------------------------------------------------

@given(st.integers(min_value=1, max_value=10_000))
def test_a_typed_value_round_trips(value: int) -> None:
    params = parse_strategy_params([f" n_neighbors = {value} "], "facility")
    assert params == {"n_neighbors": value}
    SelectConfig(strategy="facility", strategy_params=params).validate()


def test_python_names_the_field_as_python_spells_it() -> None:
    with pytest.raises(UnknownNameError) as caught:
        SelectConfig(strategy="herding", strategy_params={"n_neighbors": 3}).validate()
    assert str(caught.value).startswith(
        "strategy_params 'n_neighbors' is not a parameter of strategy herding, which takes none")
    with pytest.raises(UsageError, match=r"^strategy_params n_neighbors must be an integer, got 2\.5"):
        SelectConfig(strategy="typical", strategy_params={"n_neighbors": 2.5}).validate()
    with pytest.raises(UsageError, match=r"^strategy_params must map parameter names to values"):
        SelectConfig(strategy_params=[("cover_share", 0.1)]).validate()  # type: ignore[arg-type]


def test_each_config_owns_its_parameters() -> None:
    first, second = SelectConfig(), SelectConfig()
    assert first.strategy_params == {} and first.strategy_params is not second.strategy_params
