"""Every `raise` in the package is accounted for: it reaches the command line as one line with a
documented exit code, or it cannot reach it (and the table below says why).

A new `raise` of an exception type not listed here fails this test until its author decides.
"""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from repsample.cli import cli
from repsample.errors import EnvironmentProblem, RepsampleError

SRC = Path(__file__).parent.parent / "src" / "repsample"

# Raised as (or returned by helpers that build) RepsampleError: one line, exit 2, or 3 for
# EnvironmentProblem.
ONE_LINE = {"RepsampleError", "EnvironmentProblem", "UnknownNameError", "UsageError", "MissingExtra",
            "missing_extra", "os_problem",
            "CommandError", "EnvironmentFailure", "Differs", "_changed", "network_error",
            "failure",  # cli: CommandError or EnvironmentFailure, by the error's exit code
            "_bad", "fail", "_refuse"}  # embeddings_file, models/onnx_file: build UsageErrors
# The CLI maps these to one line, exit 3 (cli._Commands).
MAPPED = {"OSError", "FileNotFoundError", "PermissionError",
          "NotRegularFile", "_too_large"}  # fsio: OSErrors for a FIFO, a device, a file over the cap
# These never reach the CLI; where each is caught or why it cannot happen there.
INTERNAL = {
    "DecodeError": "caught in embed._decode: the file becomes an error row in the manifest",
    "_Unreadable": "models/pth.py: caught in read_state_dict, raised again as one RepsampleError line",
    "ValueError": "misuse of the Python API (selectors, registry, export mode); the "
                  "CLI validates its options first (SelectConfig.validate)",
    "AttributeError": "the package root's module __getattr__ (PEP 562) for a name it does not have",
    "NotImplementedError": "abstract ClusterSelector._pick, overridden by every registered strategy",
    "KeyError": "listing's empty bytes cell, caught in rowbytes and raised as FileNotFoundError: "
                "an error row in the manifest",
}


def _raised_names() -> dict[str, set[str]]:
    """Exception (or error-building helper) name -> the modules that raise it."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "?")
            found.setdefault(name, set()).add(path.relative_to(SRC).as_posix())
    return found


def test_every_raise_is_accounted_for() -> None:
    raised = _raised_names()
    unknown = {name: sorted(where) for name, where in raised.items()
               if name not in ONE_LINE | MAPPED | set(INTERNAL)}
    assert not unknown, f"decide how these reach the command line: {unknown}"


def test_value_errors_stay_in_api_modules() -> None:
    where = _raised_names().get("ValueError", set())
    assert where <= {"selection/strategies.py", "selection/estimator.py", "registry.py",
                     "output/export.py"}, where


@pytest.mark.parametrize(
    ("error", "code", "needle"),
    [
        (RepsampleError("bad option --x"), 2, "bad option --x"),
        (EnvironmentProblem("disk gone"), 3, "disk gone"),
        (OSError(28, "No space left on device", "/out/x.jpg"), 3, "/out/x.jpg: No space left on device"),
        (PermissionError(13, "Permission denied", "/out"), 3, "Permission denied"),
        (sqlite3.DatabaseError("database disk image is malformed"), 3, "--cache"),
    ],
)
def test_cli_turns_each_kind_into_one_line(error: Exception, code: int, needle: str) -> None:
    def explode() -> None:
        raise error

    name = f"explode-{code}-{type(error).__name__}"
    cli.add_command(click.Command(name, callback=explode))
    try:
        result = CliRunner().invoke(cli, [name])
    finally:
        cli.commands.pop(name)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.output
