"""Issue 22, item 19: what the command line and the Python API say at the edges.

Group names shown whole in the tables; the summary says eligible, in the right number; every
message names options as its reader types them (flags on the command line, Python names from
Python); `--projection umap` without umap-learn and a `--keep` manifest that matches nothing are
one line, exit 2, before any work; an unknown name from Python is an UnknownNameError;
`repsample strategies` lists without scikit-learn; README.md documents check.json.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

import repsample
from conftest import FAST_ARGS, make_image
from repsample.cli import cli
from repsample.errors import RepsampleError, UnknownNameError, UsageError

ROOT = Path(__file__).parent.parent
SRC = Path(repsample.__file__).parent  # the package these tests run
# Two groups that a cut name shows alike ("train/tulips_an..."), and one smaller than its budget.
TULIPS_A = "train/tulips_and_daisies_in_the_morning_light_a"
TULIPS_B = "train/tulips_and_daisies_in_the_morning_light_b"
LONE = "test/lone"
PER_CLASS = "5"


def repsample_cli(*args: str, python: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m repsample ARGS` in a real process, 80 columns wide; python: code run first."""
    env = {**os.environ, "COLUMNS": "80", "OMP_NUM_THREADS": "1"}
    code = f"{python}\nimport sys\nsys.argv = ['repsample', *{list(args)!r}]\n" \
           "from repsample.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=600)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single line an exit-2 failure prints."""
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """One real `repsample select` run: (INPUT, OUTPUT, cache, its summary on stdout)."""
    root = tmp_path_factory.mktemp("trust")
    data, out, cache = root / "data", root / "out", root / "cache.sqlite"
    for g, (group, n) in enumerate([(TULIPS_A, 12), (TULIPS_B, 12), (LONE, 1)]):
        for i in range(n):
            make_image(data / group / f"img_{i:02d}.png", seed=100 * g + i)
    done = repsample_cli("select", str(data), str(out), "--per-class", PER_CLASS, "--k-min", "2",
                         "--k-max", "3", "--cache", str(cache), *FAST_ARGS)
    assert done.returncode == 0, done.stderr
    return data, out, cache, done.stdout


def first_column(table_text: str) -> list[str]:
    """The first column's cells of a rich table, each put back together from its folded lines
    (a row starts where the second column has text)."""
    cells: list[str] = []
    for line in table_text.splitlines():
        if not line.startswith("│"):
            continue
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if parts[1]:
            cells.append(parts[0])
        elif cells:
            cells[-1] += parts[0]
    return cells


# -- group names whole -----------------------------------------------------------------------------

def test_evaluate_table_shows_group_names_whole(selected: tuple[Path, Path, Path, str]) -> None:
    _, out, _, _ = selected
    done = repsample_cli("evaluate", str(out), "--seeds", "2")
    assert done.returncode == 0, done.stderr
    names = first_column(done.stdout)
    assert {TULIPS_A, TULIPS_B, LONE} <= set(names), done.stdout
    assert "…" not in done.stdout.split("written:")[0], done.stdout


def test_select_summary_shows_group_names_whole(selected: tuple[Path, Path, Path, str]) -> None:
    assert {TULIPS_A, TULIPS_B, LONE} <= set(first_column(selected[3])), selected[3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.sampled_from("abcXYZ019_-./"), min_size=1, max_size=90), min_size=1,
                max_size=4, unique=True),
       st.integers(60, 160))
def test_group_column_never_cuts_a_name(names: list[str], width: int) -> None:
    from repsample.cli import _group_column

    table = Table()
    _group_column(table)
    for column in ("selected", "coverage\nmean", "mmd", "duplicate\nrate"):
        table.add_column(column, justify="right", no_wrap=True)
    for name in names:
        table.add_row(name, "10", "0.123\n(0.456)", "0.1\n(0.2)", "0\n(0)")
    buffer = StringIO()
    Console(file=buffer, width=width, markup=False).print(table)
    assert first_column(buffer.getvalue()) == names


# -- the summary's words ---------------------------------------------------------------------------

def test_a_small_group_is_counted_in_eligible_images(selected: tuple[Path, Path, Path, str]) -> None:
    summary = selected[3]
    assert f"note: {LONE}: 1 eligible image, budget {PER_CLASS}: kept all" in summary, summary
    assert "valid images" not in summary and "1 eligible images" not in summary


# -- options named as the reader types them ---------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["--k-min", "10", "--k-max", "5"], "Error: --k-min (10) must not exceed --k-max (5)"),
    (["--balance", "equal"], "Error: --balance needs --total"),
    (["--embeddings-paths", "{file}"], "Error: --embeddings-paths needs --embeddings"),
    (["--ray-address", "auto"], "Error: --ray-address needs --engine ray"),
    (["--precision", "int8", "--device", "cuda"],
     "Error: --precision int8 runs on the CPU (ONNX Runtime); choose --device cpu"),
])
def test_the_command_line_names_every_option_as_a_flag(tmp_path: Path, args: list[str],
                                                       expected: str) -> None:
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "paths.txt").write_text("a/x.png\n")
    args = [a.replace("{file}", str(tmp_path / "paths.txt")) for a in args]
    done = repsample_cli("select", str(tmp_path / "in"), str(tmp_path / "out"), *args)
    assert one_line_error(done) == expected


@pytest.mark.parametrize(("options", "expected"), [
    ({"k_min": 10, "k_max": 5}, "k_min (10) must not exceed k_max (5)"),
    ({"balance": "equal"}, "balance needs total"),
    ({"embeddings_paths": "{file}"}, "embeddings_paths needs embeddings"),
    ({"ray_address": "auto"}, "ray_address needs engine ray"),
    ({"precision": "int8", "device": "cuda"},
     "precision int8 runs on the CPU (ONNX Runtime); choose device cpu"),
])
def test_python_names_every_option_as_python_does(tmp_path: Path, options: dict[str, object],
                                                  expected: str) -> None:
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "paths.txt").write_text("a/x.png\n")
    options = {k: str(tmp_path / "paths.txt") if v == "{file}" else v for k, v in options.items()}
    with pytest.raises(UsageError) as caught:
        repsample.select(tmp_path / "in", tmp_path / "out", **options)  # type: ignore[arg-type]
    assert str(caught.value) == expected
    assert not (tmp_path / "out").exists()


def test_evaluate_names_seeds_as_the_reader_types_it(selected: tuple[Path, Path, Path, str]) -> None:
    out = selected[1]
    assert one_line_error(repsample_cli("evaluate", str(out), "--seeds", "0")) == \
        "Error: --seeds must be at least 1, got 0"
    with pytest.raises(UsageError, match=r"^seeds must be at least 1, got 0$"):
        repsample.evaluate_output(out, seeds=0)


def test_click_errors_point_at_the_right_help() -> None:
    said = CliRunner().invoke(cli, ["nosuch"], prog_name="repsample").output
    assert "(see repsample --help)" in said and "repsample repsample" not in said, said
    said = CliRunner().invoke(cli, ["select"], prog_name="repsample").output
    assert "(see repsample select --help)" in said, said


@settings(max_examples=200)
@given(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
       st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
       st.text().filter(lambda t: "\x00" not in t), st.text().filter(lambda t: "\x00" not in t))
def test_a_message_spells_options_for_its_reader(option: str, other: str, before: str,
                                                 after: str) -> None:
    from repsample.errors import mention

    error = UsageError(f"{before}{mention(other)}{after}", option=option)
    assert str(error) == f"{option} {before}{other}{after}"
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    assert error.flag == f"{flag(option)} {before}{flag(other)}{after}"
    assert error.detail == f"{before}{other}{after}"
    plain = RepsampleError(f"{before}{mention(other)}{after}")
    assert (str(plain), plain.flag) == (f"{before}{other}{after}", f"{before}{flag(other)}{after}")


OPTION_NAMES = {f.name for f in __import__("dataclasses").fields(repsample.SelectConfig)} | {
    "seeds", "modes", "mode_column", "mode_pattern", "projection"}
ERROR_BUILDERS = {"RepsampleError", "UsageError", "EnvironmentProblem", "os_problem", "_bad",
                  "fail", "network_error", "UnknownNameError"}


def test_no_library_message_spells_an_option_either_way() -> None:
    """Outside cli.py, an error message names an option only through mention(), never as a flag
    (wrong from Python); a command to run, in backticks, is spelt as typed."""
    flag = re.compile(r"(?<![\w`-])--([a-z][a-z-]*)")
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                    node.func, "attr", "")) in ERROR_BUILDERS):
                continue
            text = "".join(c.value for c in ast.walk(node)
                           if isinstance(c, ast.Constant) and isinstance(c.value, str))
            text = re.sub(r"`[^`]*`", "", text)  # a command to run is spelt as typed
            names = {m[1].replace("-", "_") for m in flag.finditer(text)} & OPTION_NAMES
            if names:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {sorted(names)}")
    assert not found, found


# -- --projection umap without umap-learn --------------------------------------------------------------

NO_UMAP = "import sys\nsys.modules['umap'] = None  # as where umap-learn is not installed"


def test_umap_without_umap_learn_is_one_line_before_any_work(
        selected: tuple[Path, Path, Path, str]) -> None:
    out = selected[1]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    line = one_line_error(repsample_cli("report", str(out), "--projection", "umap", python=NO_UMAP))
    assert line == "Error: umap-learn is not installed; run: pip install 'repsample[umap]'"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert not list(out.parent.glob(f".{out.name}.repsample-stage-*"))


def test_umap_without_umap_learn_from_python(selected: tuple[Path, Path, Path, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from repsample.report import build_report

    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(repsample.MissingExtra, match=r"pip install 'repsample\[umap\]'"):
        build_report(selected[1], projection="umap")
    with pytest.raises(UnknownNameError, match=r"^projection 'tsne' is unknown"):
        build_report(selected[1], projection="tsne")


# -- --keep that matches nothing ----------------------------------------------------------------------

def test_keep_matching_nothing_is_refused_before_embedding(
        selected: tuple[Path, Path, Path, str], tmp_path: Path) -> None:
    out = selected[1]
    other = tmp_path / "other"
    make_image(other / "cats" / "c.png", seed=7)
    cache = tmp_path / "new-cache.sqlite"
    done = repsample_cli("select", str(other), str(tmp_path / "o"), "--keep",
                         str(out / "manifest.csv"), "--cache", str(cache), *FAST_ARGS)
    line = one_line_error(done)
    assert line.startswith(f"Error: --keep {out / 'manifest.csv'}: none of the images it selected")
    assert "among those scanned under INPUT" in line
    assert not cache.exists() and not (tmp_path / "o").exists()  # nothing embedded, nothing written


def test_keep_selecting_nothing_is_refused(selected: tuple[Path, Path, Path, str],
                                           tmp_path: Path) -> None:
    data, out = selected[0], selected[1]
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["status"] = "not_selected" if row["status"] == "selected" else row["status"]
        row["rank"] = ""
    empty = tmp_path / "manifest.csv"
    with open(empty, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    line = one_line_error(repsample_cli("select", str(data), str(tmp_path / "o"), "--keep",
                                        str(empty), *FAST_ARGS))
    assert line == f"Error: --keep {empty} selects no image: nothing to keep"


def test_keep_partly_matching_warns_with_the_count(selected: tuple[Path, Path, Path, str],
                                                   tmp_path: Path) -> None:
    data, out, cache, _ = selected
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        chosen = [r["path"] for r in csv.DictReader(fh) if r["status"] == "selected"]
    shrunk = tmp_path / "data"
    shutil.copytree(data, shrunk)
    (shrunk / chosen[0]).unlink()
    done = repsample_cli("select", str(shrunk), str(tmp_path / "o"), "--per-class", PER_CLASS,
                         "--k-min", "2", "--k-max", "3", "--keep", str(out / "manifest.csv"),
                         "--cache", str(cache), "--mode", "none", "--no-report", *FAST_ARGS)
    assert done.returncode == 0, done.stderr
    assert f"1 of the {len(chosen)} images {out / 'manifest.csv'} selected are not among those " \
           "scanned under INPUT" in done.stderr, done.stderr


# -- unknown names from Python ---------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [("strategy", "nope"), ("model", "nope"),
                                               ("allocation", "nope"), ("balance", "nope"),
                                               ("mode", "nope")])
def test_an_unknown_name_from_python_is_an_unknown_name_error(tmp_path: Path, option: str,
                                                              value: str) -> None:
    (tmp_path / "in" / "a").mkdir(parents=True)
    options = {option: value, "total": 10} if option == "balance" else {option: value}
    with pytest.raises(UnknownNameError) as caught:
        repsample.select(tmp_path / "in", tmp_path / "out", **options)  # type: ignore[arg-type]
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, UsageError)
    assert str(caught.value).startswith(f"{option} 'nope' is unknown; choose one of: ")
    assert caught.value.option == option and caught.value.name == "nope"


def test_unknown_names_in_the_registries_and_the_selectors() -> None:
    import numpy as np

    from repsample.models import get_model
    from repsample.selection.strategies import STRATEGIES, HerdingSelector

    with pytest.raises(UnknownNameError, match=r"^unknown strategy 'nope'; choose one of: centroid"):
        STRATEGIES.get("nope")
    with pytest.raises(UnknownNameError, match=r"^unknown model 'nope'"):
        get_model("nope")
    with pytest.raises(UnknownNameError, match=r"^allocation 'nope' is unknown"):
        HerdingSelector(3, allocation="nope").fit(np.zeros((5, 2)))
    with pytest.raises(UnknownNameError, match=r"^model"):
        repsample.check("in", "out", model="nope")


def test_a_missing_onnx_file_is_not_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        repsample.select(tmp_path, tmp_path / "out", model=f"onnx:{tmp_path / 'none.onnx'}")
    assert not isinstance(caught.value, UnknownNameError)


# -- repsample strategies ------------------------------------------------------------------------------

def test_strategies_lists_without_scikit_learn() -> None:
    from repsample.selection.strategies import STRATEGIES, strategy_summary

    code = ("import sys\nsys.argv = ['repsample', 'strategies']\nfrom repsample.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('sklearn' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *listing, loaded = done.stdout.strip().splitlines()
    assert loaded == "False", done.stdout
    assert listing == [f"{name:<12} {strategy_summary(name)}" for name in STRATEGIES.names()]


# -- check.json ---------------------------------------------------------------------------------------

def test_readme_documents_what_check_writes() -> None:
    from repsample.checking import CHECK_JSON
    from repsample.hygiene.files import CHECK_CSV, OUTLIERS_CSV

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    said = readme[readme.index("`repsample check INPUT OUTPUT` runs this pass alone"):][:300]
    for name in (CHECK_CSV, OUTLIERS_CSV, CHECK_JSON):
        assert f"`{name}`" in said, said
    assert all(f"`{key}`" in said for key in ("input", "model", "summary")), said
