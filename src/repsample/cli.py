"""The command line: parses options, shows progress and a summary, turns user errors into one line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
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
from repsample.errors import RepsampleError, os_problem
from repsample.hygiene.findings import DEFAULT_THRESHOLD as DUP_THRESHOLD

console = Console(stderr=True)


class RichProgress:
    """One bar per stage, counts and ETA; a stage opened again (next group) extends its bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def stage(self, name: str, total: int) -> _Stage:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total)
        else:
            task = self._tasks[name]
            current = self._progress.tasks[task].total or 0
            self._progress.update(task, total=current + total)
        return _Stage(self._progress, self._tasks[name])


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
        except RepsampleError as exc:
            failure = EnvironmentFailure if exc.exit_code == EnvironmentFailure.exit_code else CommandError
            raise failure(str(exc)) from None
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


@cli.command("select")
@click.argument("input_dir", metavar="INPUT")
@click.argument("output_dir", metavar="OUTPUT")
@click.option("--per-class", type=int, default=None,
              help="Images to keep per group (folder that holds images) [default: 1000].")
@click.option("--fraction", type=float, default=None,
              help="Instead of --per-class: keep this share of each group (0 < F <= 1).")
@click.option("--keep", type=click.Path(path_type=Path), default=None, metavar="MANIFEST",
              help="An earlier manifest.csv: keep its selected images and add to them.")
@click.option("--model", default="efficientnet-lite0", show_default=True,
              help="Embedding model; `repsample models` lists them.")
@click.option("--weights", default="default", show_default=True,
              help="default (pretrained), random (untrained), or a local state_dict file.")
@click.option("--strategy", default="herding", show_default=True,
              help="Selection strategy; `repsample strategies` lists them.")
@click.option("--allocation", default="proportional", show_default=True,
              help="How a group's budget is split across clusters.")
@click.option("--k-min", type=int, default=5, show_default=True)
@click.option("--k-max", type=int, default=20, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--extensions", default=".jpg,.jpeg,.png", show_default=True,
              help="Comma-separated file extensions, matched in any case.")
@click.option("--groups", multiple=True, metavar="REL",
              help="Only these groups (paths relative to INPUT); repeatable.")
@click.option("--follow-symlinks", is_flag=True,
              help="Follow symlinks that lead outside INPUT (by default they are skipped and counted).")
@click.option("--mode", type=click.Choice(["copy", "hardlink", "symlink", "none"]), default="copy",
              show_default=True, help="How selected files reach OUTPUT.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
              help="Inference: auto = ONNX Runtime on CPU where installed, else PyTorch.")
@click.option("--precision", type=click.Choice(["fp32", "int8", "bf16", "fp16"]), default="fp32",
              show_default=True, help="Embedding arithmetic: int8 (CPU, ONNX Runtime), bf16 (CPU "
              "with native bf16 via OpenVINO, or CUDA), fp16 (CUDA). Faster, moves neighbours.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--workers", type=int, default=None,
              help="Decoding threads [default: min(4, CPUs)]; with --engine ray, model actors.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Who embeds: this process, or a Ray Data pipeline (pip install 'repsample[ray]').")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join (with --engine ray) [default: start a local Ray].")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Embedding cache database [default: in the user's cache folder].")
@click.option("--overwrite", is_flag=True, help="Replace an earlier selection in OUTPUT.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write OUTPUT/report.html (thumbnails under OUTPUT/.report).")
@click.option("--dedup/--no-dedup", default=True, show_default=True,
              help="Near-duplicates in a group count once: only the first path is eligible. "
                   "--no-dedup also skips the near-duplicate search (exact copies are still listed).")
@click.option("--drop-leaks", is_flag=True,
              help="Keep train images that also appear in another split out of the selection.")
@click.option("--dup-threshold", type=float, default=DUP_THRESHOLD, show_default=True,
              help="Embedding cosine similarity from which a pair is checked as a near-duplicate.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def select_command(input_dir: str, output_dir: str, quiet: bool, extensions: str,
                   groups: tuple[str, ...], **options: Any) -> None:
    """Select a representative subset of every class folder under INPUT into OUTPUT."""
    from repsample.config import SelectConfig
    from repsample.pipeline import select

    if options["per_class"] is not None and options["fraction"] is not None:
        _fail("give --per-class or --fraction, not both")
    if options["per_class"] is None:
        del options["per_class"]  # the config's default
    config = SelectConfig(
        extensions=tuple(e for e in extensions.split(",") if e.strip()) or ("",),
        groups=groups or None,
        **options,
    )
    with _progress(quiet) as progress:
        result = select(input_dir, output_dir, config, progress=progress, command=sys.argv)
    if not quiet:
        _summary(result)


def _summary(result: Any) -> None:
    table = Table(title=f"repsample: {result.destination or result.output}", title_justify="left")
    for column in ("group", "images", "errors", "k", "selected"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in result.groups:
        table.add_row(g.name, str(g.images), str(g.errors), str(g.k or "-"), str(g.selected))
    table.add_row("total", *(str(sum(getattr(g, a) for g in result.groups))
                             for a in ("images", "errors")), "", str(sum(g.selected for g in result.groups)),
                  style="bold")
    out = Console()
    out.print(table)
    for g in result.groups:
        if g.note:
            out.print(f"note: {g.name}: {g.note}")
    excluded = sum(g.excluded for g in result.groups)
    if excluded:
        out.print(f"{excluded} image(s) not eligible (duplicates or leaks): "
                  f"see {result.output / 'check.csv'}")
    errors = sum(g.errors for g in result.groups)
    if errors:
        out.print(f"{errors} file(s) could not be used; see status=error rows in {result.manifest_path}")
    if result.report is not None:
        out.print(f"report: {result.report}")


@cli.command("check")
@click.argument("input_dir", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--model", default="efficientnet-lite0", show_default=True,
              help="Embedding model; `repsample models` lists them.")
@click.option("--weights", default="default", show_default=True,
              help="default (pretrained), random (untrained), or a local state_dict file.")
@click.option("--dup-threshold", type=float, default=DUP_THRESHOLD, show_default=True,
              help="Embedding cosine similarity from which a pair is checked as a near-duplicate.")
@click.option("--extensions", default=".jpg,.jpeg,.png", show_default=True,
              help="Comma-separated file extensions, matched in any case.")
@click.option("--groups", multiple=True, metavar="REL", help="Only these groups; repeatable.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks that lead outside INPUT.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "int8", "bf16", "fp16"]), default="fp32",
              show_default=True, help="Embedding arithmetic (see select --help).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--workers", type=int, default=None, help="Decoding threads [default: min(4, CPUs)].")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Embedding cache database [default: in the user's cache folder].")
@click.option("--overwrite", is_flag=True, help="Replace an earlier OUTPUT/check.csv.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def check_command(input_dir: Path, output_dir: Path, quiet: bool, extensions: str,
                  groups: tuple[str, ...], overwrite: bool, **options: Any) -> None:
    """Find unreadable files, duplicates and leaks between splits; writes OUTPUT/check.csv."""
    from repsample.config import SelectConfig
    from repsample.hygiene.run import check

    config = SelectConfig(
        extensions=tuple(e for e in extensions.split(",") if e.strip()) or ("",),
        groups=groups or None,
        **options,
    )
    with _progress(quiet) as progress:
        result = check(input_dir, output_dir, config, overwrite=overwrite, progress=progress)
    if not quiet:
        _check_summary(result.summary(), result.csv_path)


def _check_summary(summary: dict[str, Any], path: Path) -> None:
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
    out = Console()
    out.print(table)
    out.print(f"written: {path}")


@cli.command("report")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Embedding cache for the maps [default: the one the run recorded].")
@click.option("--projection", type=click.Choice(["auto", "pca", "umap"]), default="auto",
              show_default=True, help="2-D map: auto is UMAP where installed, else PCA.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def report_command(output_dir: Path, cache: Path | None, projection: str, quiet: bool) -> None:
    """Rebuild OUTPUT/report.html from OUTPUT's manifest, run record and the embedding cache."""
    from repsample.report import build_report

    with _progress(quiet) as progress:
        path = build_report(output_dir, cache=cache, projection=projection, progress=progress)
    if not quiet:
        Console().print(f"report: {path}")


@cli.command("models")
def models_command() -> None:
    """List the registered embedding models."""
    from repsample.models import get_model, list_models

    for name in list_models():
        spec = get_model(name)
        click.echo(f"{name:<20} {spec.summary}")


@cli.command("evaluate")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--seeds", type=int, default=5, show_default=True,
              help="Random subsets of the same size to compare with.")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Embedding cache database [default: the one run.json names].")
def evaluate_command(output_dir: Path, seeds: int, cache: Path | None) -> None:
    """Score a selection against random subsets; writes OUTPUT/evaluation.json."""
    from repsample.evaluate import EVALUATION, evaluate_output

    result = evaluate_output(output_dir, seeds=seeds, cache=cache)
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
        _fail(f"evaluation written, but {REPORT} was not rebuilt: {exc}")
        return
    Console().print(f"report: {path}")


def _evaluation_table(result: dict[str, Any], path: Path) -> None:
    from repsample.evaluate import METRICS

    table = Table(title=f"selection (random: mean of {result['seeds']} seeded subsets); "
                  "lower is better", title_justify="left")
    table.add_column("group")
    table.add_column("selected", justify="right")
    for m in METRICS:
        table.add_column(m.replace("_", " "), justify="right")

    def cell(mine: float | None, chance: dict[str, float | None]) -> str:
        if mine is None or chance["mean"] is None:
            return "-"
        return f"{mine:.3g} ({chance['mean']:.3g})"

    for name, g in result["groups"].items():
        table.add_row(name, str(g["selected"]),
                      *(cell(g["selection"][m], g["random"][m]) for m in METRICS))
    out = Console()
    out.print(table)
    probe = result.get("linear_probe")
    if probe and probe["selection"] is not None:
        chance = probe["random"]
        out.print(f"linear probe ({probe['train_split']} subset -> all of {probe['test_split']}): "
                  f"accuracy {probe['selection']:.4f} vs random {chance['mean']:.4f}"
                  f"±{chance['std']:.4f}")
    out.print(f"written: {path}")


@cli.command("verify")
@click.argument("output_dir", metavar="OUTPUT", type=click.Path(path_type=Path))
def verify_command(output_dir: Path) -> None:
    """Check OUTPUT against its manifest: files present, unchanged, nothing extra (exit 1 if not)."""
    from repsample.integrity import verify_output

    result = verify_output(output_dir)
    for kind in ("missing", "changed", "extra"):
        for rel in getattr(result, kind):
            click.echo(f"{kind}: {rel}")
    if not result.ok:
        counts = ", ".join(f"{len(getattr(result, k))} {k}" for k in ("missing", "changed", "extra"))
        raise Differs(f"{output_dir} differs from its manifest: {counts}")
    click.echo(f"OK: {result.checked} selected file(s) match {output_dir / 'manifest.csv'}, nothing extra")


@cli.command("strategies")
def strategies_command() -> None:
    """List the registered selection strategies."""
    from repsample.select import list_strategies, strategy_summary

    for name in list_strategies():
        click.echo(f"{name:<12} {strategy_summary(name)}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        cli()
    except Exception as exc:  # a bug of ours: still one line; the traceback on request
        if os.environ.get("REPSAMPLE_DEBUG"):
            raise
        console.print(f"Error: internal error ({type(exc).__name__}: {exc}); rerun with "
                      "REPSAMPLE_DEBUG=1 for the traceback and please report it")
        sys.exit(1)
