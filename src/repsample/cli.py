"""The command line: parses options, shows progress and a summary, turns user errors into one line."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from repsample._version import __version__
from repsample.config import (
    CHECK_OPTIONS,
    EvaluateOptions,
    ModelName,
    ReportOptions,
    SelectConfig,
    VerifyOptions,
    parse_strategy_params,
)
from repsample.errors import RepsampleError, flag_name, os_problem
from repsample.inputs.folder import DEFAULT_EXTENSIONS
from repsample.models.base import ONNX_PREFIX
from repsample.output.layout import ISSUE_TYPES
from repsample.params import Device, OneOf
from repsample.progress import run_clock, since_import

if TYPE_CHECKING:
    from repsample.evaluate import EvaluationResult, Spread
    from repsample.pipeline import SelectResult



def _console(stderr: bool = False) -> Console:
    """Lines are never broken at the terminal's width: a path or an error stays one line that a
    reader can copy and a script can match."""
    return Console(stderr=stderr, markup=False, soft_wrap=True)


console = _console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


class RichProgress:
    """One bar per stage, counts and ETA. A stage's total is what ``expect`` announced, or the
    sum of what its openings asked for, whichever is larger."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._expected: dict[str, int] = {}
        self._opened: dict[str, int] = {}

    def expect(self, name: str, total: int) -> None:
        self._expected[name] = total
        self._bar(name)

    def stage(self, name: str, total: int) -> _Stage:
        self._opened[name] = self._opened.get(name, 0) + total
        return _Stage(self._progress, self._bar(name))

    def _bar(self, name: str) -> TaskID:
        total = max(self._expected.get(name, 0), self._opened.get(name, 0))
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total)
        else:
            self._progress.update(self._tasks[name], total=total)
        return self._tasks[name]


class _Stage:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.refresh()


@contextmanager
def _progress(quiet: bool) -> Iterator[RichProgress | None]:
    if quiet:
        yield None
        return
    columns = (
        TextColumn("{task.description:<7}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield RichProgress(progress)


class CommandError(click.ClickException):
    """Printed as one line, 'Error: ...'; exit code 2: the user's input or options."""

    exit_code = 2


class EnvironmentFailure(CommandError):
    """Exit code 3: the machine (space, permissions, a damaged cache, files changing)."""

    exit_code = 3


class Differs(CommandError):
    """Exit code 1: ``verify`` found differences."""

    exit_code = 1


def _fail(message: str) -> None:
    raise CommandError(message)


class _Commands(click.Group):
    """Every failure that reaches the command line is one line and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        import sqlite3

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # click's own (a bad choice, a missing argument): one line too
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise CommandError(f"{exc.format_message()} (see {where} --help)") from None
        except RepsampleError as exc:  # flag: the options it names spelt as flags
            failure = EnvironmentFailure if exc.exit_code == EnvironmentFailure.exit_code else CommandError
            raise failure(exc.flag) from None
        except OSError as exc:
            where = f"{exc.filename}" if exc.filename else "a file"
            raise EnvironmentFailure(str(os_problem(exc, where))) from None
        except sqlite3.Error as exc:
            raise EnvironmentFailure(
                f"embedding cache error ({exc}); pass --cache PATH to use another file") from None
        except MemoryError:
            raise EnvironmentFailure("out of memory; try a smaller --batch-size or fewer --workers") from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repsample")
def cli() -> None:
    """Turn a large image dataset into a smaller one that is still varied and representative."""


class _LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A choice among a registry's names, read when shown or checked: plugins may add names, and
    listing the strategies imports scikit-learn, which `repsample --help` must not."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__((), case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        pass  # click's __init__ stores the (empty) tuple it was given


class _ModelChoice(_LazyChoice):
    """A registered model's name, or onnx:PATH (the file is checked with the other options)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith(ONNX_PREFIX):
            return value
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(self.choices)}|{ONNX_PREFIX}PATH]"


class _DeviceType(click.ParamType):  # type: ignore[type-arg]
    name = "device"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(Device.choices)}|cuda:N]"

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(c) for c in Device.choices if c.startswith(incomplete)]


_CLICK_TYPES: dict[str, Any] = {"int": int, "int | None": int, "float": float, "float | None": float,
                                "Path | None": click.Path(path_type=Path)}


def _click_type(field: dataclasses.Field[Any]) -> Any:
    """The click type of a declared option: choices from its constraint, else from its type."""
    constraint = field.metadata.get("constraint")
    if isinstance(constraint, ModelName):
        return _ModelChoice(constraint.names)
    if isinstance(constraint, OneOf):
        return _LazyChoice(constraint.names)
    if isinstance(constraint, Device):
        return _DeviceType()
    return _CLICK_TYPES.get(str(field.type))


def _option(field: dataclasses.Field[Any]) -> Callable[[F], F]:
    """The click option of one declared field (config.option): flag, default, help, choices and
    metavar from it."""
    name, help_text = field.name, field.metadata["help"]
    flag = flag_name(name)
    kwargs: dict[str, Any] = {"default": field.default, "show_default": True, "help": help_text}
    click_type = _click_type(field)
    if click_type is not None:
        kwargs["type"] = click_type
    if field.metadata.get("metavar"):
        kwargs["metavar"] = field.metadata["metavar"]
    if field.type == "bool":
        decls = [f"{flag}/--no-{flag[2:]}"] if field.default else [flag]
        return click.option(*decls, name, is_flag=True, **kwargs)
    if field.metadata.get("repeatable"):  # given once per value
        kwargs.update(default=(), multiple=True, show_default=False, help=help_text + " Repeatable.")
    elif name == "extensions":  # one comma-separated argument on the command line
        kwargs.update(default=",".join(DEFAULT_EXTENSIONS), help=help_text + " Comma-separated.")
    elif name == "drop_issues":  # one comma-separated argument on the command line
        kwargs.update(default="", show_default=False, metavar="LIST", help=help_text + " Comma-separated.")
    elif name == "per_class":  # None on the command line: given together with --fraction?
        kwargs.update(default=None, show_default=False,
                      help=help_text + f" [default: {field.default}]")
    elif field.default is None:
        kwargs["show_default"] = False
    return click.option(flag, name, **kwargs)


def _options(declared: type[Any], *names: str) -> Callable[[F], F]:
    """A command's options from the dataclass that declares them: all its fields, or names."""
    fields = {f.name: f for f in dataclasses.fields(declared)}

    def decorate(command: F) -> F:
        for name in reversed(names or tuple(fields)):
            command = _option(fields[name])(command)
        return command

    return decorate


def _quiet(help_text: str = "No progress bars or summary.") -> Callable[[F], F]:
    return click.option("-q", "--quiet", is_flag=True, help=help_text)


def _config(extensions: str, groups: tuple[str, ...], strategy_params: tuple[str, ...] = (),
            drop_issues: str = "", **options: Any) -> SelectConfig:
    """A SelectConfig from the command line's values (extensions, groups and strategy
    parameters as typed)."""
    budgets = [f"--{n.replace('_', '-')}" for n in ("per_class", "fraction", "total")
               if options.get(n) is not None]
    if len(budgets) > 1:
        _fail(f"give one of --per-class, --fraction or --total, not {' and '.join(budgets)}")
    if "per_class" in options and options["per_class"] is None:
        del options["per_class"]  # the config's default
    params = parse_strategy_params(strategy_params, options["strategy"]) if strategy_params else {}
    return SelectConfig(extensions=tuple(e for e in extensions.split(",") if e.strip()) or ("",),
                        groups=groups or None, strategy_params=params,
                        drop_issues=tuple(i.strip() for i in drop_issues.split(",") if i.strip()),
                        **options)


@cli.command("select")
@click.argument("input_dir", metavar="INPUT")
@click.argument("output_dir", metavar="OUTPUT")
@_options(SelectConfig)
@_quiet()
def select_command(input_dir: str, output_dir: str, quiet: bool, **options: Any) -> None:
    """Select a representative subset of every class folder under INPUT into OUTPUT.

    INPUT may also be a .csv, .jsonl or .parquet listing (a path or image bytes, a label, a
    split) or hf://NAME_OR_PATH, a Hugging Face dataset: its groups are split/label or label."""
    from repsample.pipeline import select

    config = _config(**options)
    # run.json's stage table starts at repsample's first import: imports and parsing too.
    with run_clock(startup=since_import()), _progress(quiet) as progress:
        result = select(input_dir, output_dir, config, progress=progress, command=sys.argv)
    if not quiet:
        _summary(result)


def _group_column(table: Table) -> None:
    """Group names shown whole, wrapped where the terminal is narrow: cut, two groups that share
    a long prefix ("train/tulips_a", "train/tulips_b") would look the same."""
    table.add_column("group", overflow="fold")


def _summary(result: SelectResult) -> None:
    where = result.destination or str(result.output)  # a URL OUTPUT: the local stage is gone
    table = Table(title=f"repsample: {where}", title_justify="left")
    _group_column(table)
    for column in ("images", "errors", "k", "selected"):
        table.add_column(column, justify="right")
    for g in result.groups:
        table.add_row(g.name, str(g.images), str(g.errors), str(g.k or "-"), str(g.selected))
    table.add_row("total", *(str(sum(getattr(g, a) for g in result.groups))
                             for a in ("images", "errors")), "", str(sum(g.selected for g in result.groups)),
                  style="bold")
    out = _console()
    out.print(table)
    for g in result.groups:
        if g.note:
            out.print(f"note: {g.name}: {g.note}")
    outliers = sum(g.outliers for g in result.groups)
    flagged = Counter(i for r in result.rows for i in (r.get("issues") or "").split(";") if i)
    dropped = Counter(r["reason"] for r in result.rows if r.get("reason") in ISSUE_TYPES)
    excluded = sum(g.excluded for g in result.groups) - outliers - sum(dropped.values())
    if excluded:
        out.print(f"{excluded} image(s) not eligible (duplicates or leaks): "
                  f"see {where}/check.csv")
    if flagged:
        out.print("image quality issues: " + ", ".join(f"{i} {flagged[i]}" for i in ISSUE_TYPES if flagged[i])
                  + (f"; not eligible (--drop-issues): {sum(dropped.values())}" if dropped else "")
                  + f"; issues column in {where}/manifest.csv")
    if outliers:
        out.print(f"{outliers} outlier(s) not eligible (--drop-outliers): "
                  + ", ".join(f"{g.name} {g.outliers}" for g in result.groups if g.outliers)
                  + f"; reason=outlier in {where}/manifest.csv")
    errors = sum(g.errors for g in result.groups)
    if errors:
        out.print(f"{errors} file(s) could not be used; see status=error rows in {where}/manifest.csv")
    if result.report is not None:
        out.print(f"report: {result.report}")


@cli.command("check")
@click.argument("input_dir", metavar="INPUT")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@_options(SelectConfig, *CHECK_OPTIONS)
@_quiet()
def check_command(input_dir: str, output_dir: Path, quiet: bool, **options: Any) -> None:
    """Find unreadable files, duplicates and leaks between splits; writes OUTPUT/check.csv."""
    from repsample.checking import check

    config = _config(**options)
    with _progress(quiet) as progress:
        result = check(input_dir, output_dir, config, progress=progress)
    if not quiet:
        _check_summary(result.summary(), result.csv_path, result.outliers_path, result.issues_path)


def _check_summary(summary: dict[str, Any], path: Path, outliers: Path, issues: Path) -> None:
    table = Table(title="repsample check", title_justify="left")
    table.add_column("finding")
    table.add_column("images", justify="right")
    table.add_row("images scanned", str(summary["images"]))
    table.add_row("unreadable", str(summary["unreadable"]))
    table.add_row("exact duplicates in a group", str(summary["exact_duplicates"]))
    table.add_row(f"near-duplicates in a group (>= {summary['threshold']})", str(summary["near_duplicates"]))
    table.add_row("same picture in another group", str(summary["cross_group"]))
    splits = summary["splits"]
    for split, n in summary["leaked_by_split"].items():
        table.add_row(f"leaked: in {split} and another split", str(n))
    if not splits:
        table.add_row("leaks between splits", "- (fewer than two splits)")
    table.add_row(f"outliers (top {summary['outlier_share']:.0%} of each group)", str(summary["outliers"]))
    for issue, n in summary["quality"]["issues"].items():
        table.add_row(f"image quality: {issue}", str(n))
    out = _console()
    out.print(table)
    out.print(f"written: {path}, {outliers}, {issues}")


@cli.command("report")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@_options(ReportOptions)
@_quiet("No progress bar.")
def report_command(output_dir: Path, cache: Path | None, projection: str, quiet: bool) -> None:
    """Rebuild OUTPUT/report.html from OUTPUT's manifest, run record and the embedding cache."""
    from repsample.report import build_report

    with _progress(quiet) as progress:
        path = build_report(output_dir, cache=cache, projection=projection, progress=progress)
    if not quiet:
        _console().print(f"report: {path}")


@cli.command("models")
def models_command() -> None:
    """List the registered embedding models."""
    from repsample.models import get_model, list_models

    for name in list_models():
        spec = get_model(name)
        click.echo(f"{name:<20} {spec.summary}")
    click.echo(f"{'onnx:PATH':<20} your ONNX image encoder: preprocessing from --input-size, --resize, "
               "--mean, --std or the .json beside it")


@cli.command("evaluate")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@_options(EvaluateOptions)
def evaluate_command(output_dir: Path, seeds: int, cache: Path | None, modes: Path | None,
                     mode_column: str, mode_pattern: str | None) -> None:
    """Score a selection against random subsets; writes OUTPUT/evaluation.json."""
    from repsample.evaluate import EVALUATION, ModeLabels, evaluate_output

    if modes is not None and mode_pattern is not None:
        raise click.UsageError("give --modes or --mode-pattern, not both")
    labels = (ModeLabels.from_csv(modes, mode_column) if modes is not None
              else ModeLabels.from_pattern(mode_pattern) if mode_pattern is not None else None)
    result = evaluate_output(output_dir, seeds=seeds, cache=cache, modes=labels)
    _evaluation_table(result, output_dir / EVALUATION)
    _refresh_report(output_dir, cache)


def _refresh_report(output_dir: Path, cache: Path | None) -> None:
    """A run that has a report gets the new figures in it without a second command."""
    from repsample.report import REPORT, build_report

    if not (output_dir / REPORT).is_file():
        return
    try:
        path = build_report(output_dir, cache=cache)
    except RepsampleError as exc:
        _fail(f"evaluation written, but {REPORT} was not rebuilt: {exc.flag}")
        return
    _console().print(f"report: {path}")


def _evaluation_table(result: EvaluationResult, path: Path) -> None:
    from repsample.evaluate import METRICS
    from repsample.output.metrics import WEIGHTED_MMD

    columns = [m for m in METRICS if m != WEIGHTED_MMD]  # a line of its own below: 80 columns are full
    table = Table(title=f"selection (random: mean of {result.seeds} seeded subsets); "
                  "lower is better", title_justify="left")
    _group_column(table)
    table.add_column("selected", justify="right")
    for m in columns:  # narrow columns (two lines a cell and a header) leave the names room
        table.add_column(m.replace("_", "\n"), justify="right", no_wrap=True)

    def cell(mine: float | None, chance: Spread) -> str:
        if mine is None or chance.mean is None:
            return "-"
        return f"{mine:.3f}\n({chance.mean:.3f})"  # fixed decimals: no 6.74e-07 to widen a column

    for name, g in result.groups.items():
        table.add_row(name, str(g.selected), *(cell(g.selection[m], g.random[m]) for m in columns))
    out = _console()
    out.print(table)
    weighted, chance = result.overall.selection[WEIGHTED_MMD], result.overall.random[WEIGHTED_MMD]
    if weighted is not None and chance is not None:
        out.print(f"weighted MMD (the manifest's weights; random subsets: their own): {weighted:.4f} "
                  f"vs random {chance:.4f} (lower is better; unweighted in the table)")
    probe = result.linear_probe
    if probe and probe.selection is not None and probe.random.mean is not None:
        out.print(f"linear probe ({probe.train_split} subset -> all of {probe.test_split}): "
                  f"accuracy {probe.selection:.4f} vs random {probe.random.mean:.4f}"
                  f"±{probe.random.std or 0.0:.4f}")
    if result.modes is not None:
        held = result.modes
        out.print(f"modes covered ({held.source}): {held.selection} of {held.total} vs random "
                  f"{held.random.mean or 0.0:.1f}±{held.random.std or 0.0:.1f} (higher is better)")
        for name, g in result.groups.items():
            if g.modes is not None and g.modes.missed:
                shown = ", ".join(g.modes.missed[:10]) + (" ..." if len(g.modes.missed) > 10 else "")
                out.print(f"  {name}: {g.modes.selection} of {g.modes.total}; missed {shown}",
                          highlight=False)
    out.print(f"written: {path}")


@cli.command("verify")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@_options(VerifyOptions)
def verify_command(output_dir: Path, adopt: bool) -> None:
    """Check OUTPUT against its manifest: files present, unchanged, nothing extra (exit 1 if not)."""
    from repsample.output.layout import MANIFEST
    from repsample.output.verify import adopt_output, verify_output

    result, adopted = adopt_output(output_dir) if adopt else (verify_output(output_dir), False)
    for kind in ("missing", "changed", "extra"):
        for rel in getattr(result, kind):
            click.echo(f"{kind}: {rel}")
    if not result.ok:
        counts = ", ".join(f"{len(getattr(result, k))} {k}" for k in ("missing", "changed", "extra"))
        adopting = "; nothing adopted" if adopt else ""
        raise Differs(f"{output_dir} differs from its manifest: {counts}{adopting}")
    if adopt and not adopted:
        raise Differs(f"{output_dir} changed while it was checked; nothing adopted: run it again")
    what = (f"{output_dir / result.selection} lists the {result.checked} selected row(s) of"
            if result.selection else f"{result.checked} selected file(s) match")
    click.echo(f"OK: {what} {output_dir / MANIFEST}, nothing extra"
               + ("; adopted: --overwrite may replace it" if adopted else ""))


@cli.command("strategies")
@click.option("--parameters", is_flag=True,
              help="Also each strategy's parameters, set with select --strategy-params NAME=VALUE.")
def strategies_command(parameters: bool) -> None:
    """List the selection strategies."""
    from repsample.selection.names import BUILT_IN, PARAMETERS  # not .strategies: scikit-learn is slow

    for name, summary in BUILT_IN.items():
        click.echo(f"{name:<12} {summary}")
        for tunable in PARAMETERS.get(name, ()) if parameters else ():
            click.echo(f"{'':<12}   {tunable.describe()}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        cli()
    except Exception as exc:  # a bug of ours: still one line; the traceback on request
        if os.environ.get("REPSAMPLE_DEBUG"):
            raise
        console.print(f"Error: internal error ({type(exc).__name__}: {exc}); rerun with "
                      "REPSAMPLE_DEBUG=1 for the traceback and please report it", markup=False)
        sys.exit(1)
    finally:
        # The interpreter's last collections would walk every object the run made, only to free
        # memory the process is about to give back: 0.1 of the 0.2 s a run took to exit.
        gc.freeze()
