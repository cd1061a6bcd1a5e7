"""Records: the one reader of what `repsample select` leaves in OUTPUT, read strictly.

manifest.csv (its score columns too) and run.json are files a user can edit, truncate or replace,
so nothing downstream trusts them unread: a missing, empty, foreign, partial or edited record is
one RepsampleError line naming the file, the line and the fix, and what passes comes back typed.
check.csv and evaluation.json are optional extras, skipped with a warning when unreadable;
evaluation.json also says which selection it scored (the manifest's SHA-256 and run.json's
``started``), so an evaluation of an earlier selection is never shown as this one's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from repsample.errors import RepsampleError, UsageError, mention, os_problem
from repsample.output.files import read_csv_rows, unescape_cell
from repsample.output.layout import (
    CHECK_CSV,
    EVALUATION,
    ISSUE_TYPES,
    MANIFEST,
    MANIFEST_FIELDS,
    MANIFEST_HEADERS,
    QUALITY_FIELDS,
    RUN_RECORD,
    SCORE_FIELDS,
)
from repsample.output.outcome import GroupResult

logger = logging.getLogger(__name__)

STATUSES = ("selected", "not_selected", "error")
REASONS = ("", "duplicate", "leak", "outlier", *ISSUE_TYPES)
_HASH = re.compile(r"[0-9a-f]{64}")
_COUNT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class ManifestRow:
    """One checked manifest row."""

    path: str  # relative to INPUT, POSIX separators
    group: str
    status: str  # selected | not_selected | error
    cluster: int | None
    distance: float | None
    rank: int | None
    hash: str  # "" when the file could not be hashed (error rows only)
    error: str
    duplicate_of: str = ""
    leak_with: str = ""
    typicality: float | None = None  # higher = more typical of its group
    outlier_score: float | None = None  # higher = more unusual in its group
    uniqueness: float | None = None  # distance to its group's nearest other image
    duplicate_similarity: float | None = None  # cosine similarity of its closest duplicate
    reason: str = ""  # why a valid image was not eligible: duplicate, leak, outlier, an issue
    weight: float | None = None  # a selected image's share of its group (None: none written)
    quality: dict[str, float | None] = field(default_factory=dict)  # QUALITY_FIELDS (empty: none)
    issues: tuple[str, ...] = ()  # its image quality issues (ISSUE_TYPES)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Manifest:
    path: Path
    rows: tuple[ManifestRow, ...]
    sha256: str  # of the file's bytes: names this selection
    columns: tuple[str, ...] = MANIFEST_FIELDS  # or an older header (layout.MANIFEST_HEADERS)

    def selected(self) -> dict[str, frozenset[str]]:
        """Selected paths per group."""
        by_group: dict[str, set[str]] = {}
        for row in self.rows:
            if row.status == "selected":
                by_group.setdefault(row.group, set()).add(row.path)
        return {g: frozenset(paths) for g, paths in by_group.items()}

    def scores(self) -> tuple[dict[str, Scores], tuple[str, ...]]:
        """Each row's scores by path, and the score columns (SCORE_FIELDS) that hold at least one
        (none for a manifest written before them, or with them all empty)."""
        scores = {row.path: Scores({c: getattr(row, c) for c in SCORE_FIELDS}, row.reason)
                  for row in self.rows}
        held = tuple(c for c in SCORE_FIELDS if any(s.values[c] is not None for s in scores.values()))
        return scores, held


@dataclass(frozen=True)
class Scores:
    """One image's manifest scores (None: column absent or cell empty) and reason."""

    values: dict[str, float | None]
    reason: str = ""

    def get(self, column: str) -> float | None:
        return self.values.get(column)


@dataclass(frozen=True)
class RunRecord:
    path: Path
    data: dict[str, Any]  # the whole record, for what the report shows as it is
    started: str
    cache: str  # the embedding cache the run used
    cache_key: str  # the model's key in it
    groups: dict[str, GroupResult]  # by name
    input: str | None = None  # INPUT as the run named it
    mode: str = "copy"  # the export mode (an older or hand-made record without one: copy)
    seed: int | None = None


@dataclass(frozen=True)
class Run:
    """A finished `repsample select` OUTPUT: its manifest and run record, checked together."""

    output: Path
    manifest: Manifest
    record: RunRecord

    @property
    def selection_id(self) -> dict[str, str]:
        """What evaluation.json records of the selection it scores."""
        return {"manifest_sha256": self.manifest.sha256, "run_started": self.record.started}


@dataclass(frozen=True)
class Evaluation:
    data: dict[str, Any]
    state: Literal["current", "stale", "unverified"]
    """current: it scores this selection; stale: an earlier one; unverified: it does not say
    (hand-made, or written before evaluations recorded it)."""


def read_run(output: Path) -> Run:
    """OUTPUT's manifest and run record, or one RepsampleError line saying what is wrong."""
    out = Path(output)
    if not out.is_dir():
        raise RepsampleError(f"{out} is not a folder; point it at the OUTPUT of a finished "
                             "`repsample select` run")
    have = {name: (out / name).is_file() for name in (MANIFEST, RUN_RECORD)}
    if not any(have.values()):
        raise RepsampleError(f"{out} holds no repsample run ({MANIFEST} not found, nor "
                             f"{RUN_RECORD}); point it at the OUTPUT of a finished `repsample "
                             "select` run")
    if not all(have.values()):
        present, missing = (MANIFEST, RUN_RECORD) if have[MANIFEST] else (RUN_RECORD, MANIFEST)
        raise RepsampleError(f"{out} holds {present} but no {missing}: a partial or damaged run; "
                             f"{_rerun(out)}")
    record = _read_run_record(out / RUN_RECORD, _rerun(out))
    manifest = read_manifest(out / MANIFEST)
    _check_together(manifest, record, _rerun(out))
    return Run(out, manifest, record)


def read_manifest(path: Path) -> Manifest:
    """An OUTPUT's manifest.csv, every cell checked."""
    fix = _rerun(path.parent)
    data = _read_bytes(path, fix)
    try:
        rows, columns = _parse_manifest(data)
    except RepsampleError as exc:
        raise RepsampleError(f"{path} is not a valid repsample manifest ({exc}); {fix}") from None
    return Manifest(path, rows, hashlib.sha256(data).hexdigest(), columns)


def read_scores(path: Path) -> tuple[dict[str, Scores], tuple[str, ...]]:
    """A manifest.csv's scores by path, and the score columns that hold one (Manifest.scores)."""
    return read_manifest(path).scores()


def kept_paths(path: Path) -> dict[str, frozenset[str]]:
    """Selected paths per group of an earlier manifest (--keep)."""
    try:
        data = path.read_bytes()
    except OSError as exc:  # a missing file was refused by SelectConfig.validate already
        raise os_problem(exc, f"reading {mention('keep')} {path}") from None
    try:
        rows, _ = _parse_manifest(data)
    except RepsampleError as exc:
        raise UsageError(f"{path} is not a repsample manifest.csv ({exc})", option="keep") from None
    return Manifest(path, rows, "").selected()


def read_evaluation(run: Run) -> Evaluation | None:
    """OUTPUT's evaluation.json and whether it scores this run's selection; None when absent.

    It is an optional extra: an unreadable one is skipped with a warning, not an error.
    """
    path = run.output / EVALUATION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("skipping %s: %s", path, exc)
        return None
    if not isinstance(data, dict):
        data = {"value": data}
    if "scored" not in data:
        return Evaluation(data, "unverified")
    return Evaluation(data, "current" if data["scored"] == run.selection_id else "stale")


def read_check(run: Run) -> list[dict[str, str]] | None:
    """OUTPUT's check.csv, cells as written; None when absent. An optional extra too: an
    unreadable one is skipped with a warning."""
    path = run.output / CHECK_CSV
    if not path.is_file():
        return None
    try:
        return read_csv_rows(path, errors="strict")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("skipping %s: %s", path, exc)
        return None


# -- manifest.csv -------------------------------------------------------------------------------


def _parse_manifest(data: bytes) -> tuple[tuple[ManifestRow, ...], tuple[str, ...]]:
    """The rows and the header, or a RepsampleError saying where and what is wrong (the caller
    names the file)."""
    if not data.strip():
        raise RepsampleError("the file is empty")
    # surrogateescape: export writes a file name that is not valid UTF-8 back byte for byte.
    reader = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    rows: list[ManifestRow] = []
    first_line: dict[str, int] = {}
    try:
        header = tuple(next(reader))
        if header not in MANIFEST_HEADERS:
            raise RepsampleError(f"line 1: the header is {_show(','.join(header))}, not "
                                 f"{','.join(MANIFEST_FIELDS)}")
        for cells in reader:
            if not cells:
                continue
            where = f"line {reader.line_num}"
            row = _row(header, [unescape_cell(c) for c in cells], where)  # files.escape_cell's
            if row.path in first_line:
                raise RepsampleError(f"{where}: path {_show(row.path)} is listed twice (first on "
                                     f"line {first_line[row.path]})")
            first_line[row.path] = reader.line_num
            rows.append(row)
    except csv.Error as exc:
        raise RepsampleError(f"line {reader.line_num}: not CSV ({exc})") from None
    return tuple(rows), header


def _row(header: tuple[str, ...], cells: list[str], where: str) -> ManifestRow:
    if len(cells) != len(header):
        raise RepsampleError(f"{where}: {len(cells)} cells, a manifest row has {len(header)}")
    cell = dict.fromkeys(MANIFEST_FIELDS, "") | dict(zip(header, cells, strict=True))
    status = cell["status"]
    if status not in STATUSES:
        raise RepsampleError(f"{where}: status {_show(status)} is not one of {', '.join(STATUSES)}")
    for key in ("path", "group"):
        problem = _unsafe(cell[key], allow_dot=key == "group")
        if problem:
            raise RepsampleError(f"{where}: {key} {_show(cell[key])} {problem}")
    if (posixpath.dirname(cell["path"]) or ".") != cell["group"]:
        raise RepsampleError(f"{where}: path {_show(cell['path'])} is not in group "
                             f"{_show(cell['group'])}")
    digest = cell["hash"]
    if not _HASH.fullmatch(digest) and (status != "error" or digest):
        raise RepsampleError(f"{where}: hash {_show(digest)} is not 64 hexadecimal digits")
    return ManifestRow(
        path=cell["path"], group=cell["group"], status=status,
        cluster=_count(cell["cluster"], "cluster", where),
        distance=_distance(cell["distance"], where),
        rank=_count(cell["rank"], "rank", where, least=1),
        hash=digest, error=cell["error"], duplicate_of=cell["duplicate_of"],
        leak_with=cell["leak_with"],
        typicality=_number(cell["typicality"], "typicality", where, least=0),
        outlier_score=_number(cell["outlier_score"], "outlier_score", where),
        uniqueness=_number(cell["uniqueness"], "uniqueness", where, least=0),
        duplicate_similarity=_number(cell["duplicate_similarity"], "duplicate_similarity", where),
        reason=_reason(cell["reason"], status, where),
        weight=_weight(cell["weight"], where),
        quality={c: _number(cell[c], c, where) for c in QUALITY_FIELDS if cell[c]},
        issues=_issues(cell["issues"], where),
    )


def _unsafe(value: str, allow_dot: bool) -> str | None:
    """Why a path cell could lead outside its folder, or None."""
    if not value:
        return "is empty"
    if value.startswith("/") or re.match(r"[A-Za-z]:[\\/]", value):
        return "is absolute"
    if allow_dot and value == ".":
        return None
    if any(part in ("", ".", "..") for part in value.split("/")):
        return "has an empty, '.' or '..' part"
    return None


def _count(value: str, name: str, where: str, least: int = 0) -> int | None:
    if value == "":
        return None
    if not _COUNT.fullmatch(value) or int(value) < least:
        raise RepsampleError(f"{where}: {name} {_show(value)} is not an integer >= {least}")
    return int(value)


def _distance(value: str, where: str) -> float | None:
    return _number(value, "distance", where, least=0)


def _number(value: str, name: str, where: str, least: float | None = None) -> float | None:
    """An empty cell as None, else a finite number (at least ``least``)."""
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or (least is not None and number < least):
        bound = "" if least is None else f" >= {least:g}"
        raise RepsampleError(f"{where}: {name} {_show(value)} is not a number{bound}")
    return number


def _reason(value: str, status: str, where: str) -> str:
    if value not in REASONS:
        raise RepsampleError(f"{where}: reason {_show(value)} is not one of "
                             f"{', '.join(r for r in REASONS if r)} (or empty)")
    if value and status != "not_selected":
        raise RepsampleError(f"{where}: reason {_show(value)} on a {status} row (only a "
                             "not_selected image has one)")
    return value


def _issues(value: str, where: str) -> tuple[str, ...]:
    issues = tuple(value.split(";")) if value else ()
    unknown = [i for i in issues if i not in ISSUE_TYPES]
    if unknown:
        raise RepsampleError(f"{where}: issue {_show(unknown[0])} is not one of {', '.join(ISSUE_TYPES)}")
    return issues


def _weight(value: str, where: str) -> float | None:
    """A share of its group. One left on a row a user deselected (by its status) is read but
    counts for nothing: evaluate weighs the selected rows only."""
    weight = _number(value, "weight", where, least=0)
    if weight is not None and weight > 1:
        raise RepsampleError(f"{where}: weight {_show(value)} is above 1 (a share of its group)")
    return weight


# -- run.json -----------------------------------------------------------------------------------


_ABSENT = object()


def _read_run_record(path: Path, fix: str) -> RunRecord:
    data = _read_bytes(path, fix)
    try:
        record = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RepsampleError(f"{path} is not UTF-8 text (byte {exc.start}); {fix}") from None
    except json.JSONDecodeError as exc:
        raise RepsampleError(f"{path} is not JSON (line {exc.lineno} column {exc.colno}: "
                             f"{exc.msg}); {fix}") from None
    if not isinstance(record, dict):
        raise RepsampleError(f"{path} is not a run record (a JSON {type(record).__name__}, not "
                             f"an object); {fix}")
    fields = _Fields(path, fix)
    started = fields.need(record.get("started"), "started", str, "a time")
    parameters = fields.need(record.get("parameters"), "parameters", dict, "an object")
    model = fields.need(record.get("model"), "model", dict, "an object")
    _check_read_as_is(record, parameters, fields)
    groups = {name: _group_result(name, info, f"groups[{_show(name)}]", fields) for name, info in
              fields.need(record.get("groups"), "groups", dict, "an object").items()}
    return RunRecord(
        path=path, data=record, started=started,
        cache=fields.need(parameters.get("cache"), "parameters.cache", str, "a path"),
        cache_key=fields.need(model.get("cache_key"), "model.cache_key", str, "text"),
        groups=groups,
        input=record.get("input"),  # the types of these three: _check_read_as_is
        mode=parameters.get("mode") or "copy",
        seed=parameters.get("seed"),
    )


class _Fields:
    """Checks run.json's values one by one; a wrong one is one line naming the file and field."""

    def __init__(self, path: Path, fix: str) -> None:
        self.path, self.fix = path, fix

    def need(self, value: Any, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        if not isinstance(value, kind) or isinstance(value, bool):
            shown = "missing" if value is None else f"{_show(value)}, not {label}"
            raise RepsampleError(f"{self.path}: {key} is {shown}; {self.fix}")
        return value

    def optional(self, holder: dict[str, Any], name: str, key: str, kind: type, label: str,
                 nullable: bool = True) -> None:
        """holder[name] may be absent (an older or hand-made record), or null where nullable;
        any other value must be of kind."""
        value = holder.get(name, _ABSENT)
        if value is _ABSENT or (value is None and nullable):
            return
        if value is None:
            raise RepsampleError(f"{self.path}: {key} is null, not {label}; {self.fix}")
        self.need(value, key, kind, label)

    def count(self, holder: dict[str, Any], name: str, key: str) -> int:
        """An integer that older or hand-made records may leave out (or null): 0 then."""
        value = holder.get(name)
        return 0 if value is None else int(self.need(value, key, int, "an integer"))


def _check_read_as_is(record: dict[str, Any], parameters: dict[str, Any], fields: _Fields) -> None:
    """The values that report, evaluate and verify use from RunRecord.data, as it is."""
    fields.optional(record, "input", "input", str, "a path")
    fields.optional(record, "output", "output", str, "a path")
    fields.optional(record, "command", "command", list, "a list of arguments")
    for i, arg in enumerate(record.get("command") or ()):
        fields.need(arg, f"command[{i}]", str, "text")
    for name in ("totals", "check"):
        fields.optional(record, name, name, dict, "an object")
    fields.optional(parameters, "seed", "parameters.seed", int, "an integer", nullable=False)
    fields.optional(parameters, "mode", "parameters.mode", str, "an export mode")


def _group_result(name: str, info: Any, key: str, fields: _Fields) -> GroupResult:
    fields.need(info, key, dict, "an object")
    try:
        silhouettes = {int(k): float(v) for k, v in
                       fields.need(info.get("silhouette", {}), f"{key}.silhouette", dict,
                                   "an object").items()}
        seconds = {str(k): float(v) for k, v in
                   fields.need(info.get("seconds", {}), f"{key}.seconds", dict, "an object").items()}
    except (TypeError, ValueError):
        raise RepsampleError(f"{fields.path}: {key} holds a value that is not a number; "
                             f"{fields.fix}") from None
    sample = info.get("silhouette_sample")
    note = info.get("note")
    return GroupResult(
        name=name,
        images=fields.need(info.get("images"), f"{key}.images", int, "an integer"),
        errors=fields.count(info, "errors", f"{key}.errors"),
        selected=fields.need(info.get("selected"), f"{key}.selected", int, "an integer"),
        k=fields.need(info.get("k"), f"{key}.k", int, "an integer"),
        silhouettes=silhouettes,
        silhouette_sample=None if sample is None else fields.need(
            sample, f"{key}.silhouette_sample", int, "an integer"),
        seconds=seconds,
        note=None if note is None else fields.need(note, f"{key}.note", str, "text"),
        embedded=fields.count(info, "embedded", f"{key}.embedded"),
        excluded=fields.count(info, "excluded", f"{key}.excluded"),
        outliers=fields.count(info, "outliers", f"{key}.outliers"),
    )


def _check_together(manifest: Manifest, record: RunRecord, fix: str) -> None:
    """The manifest and the run record must describe the same run, group by group."""
    rows: dict[str, int] = {}
    selected: dict[str, int] = {}
    for row in manifest.rows:
        rows[row.group] = rows.get(row.group, 0) + 1
        selected[row.group] = selected.get(row.group, 0) + (row.status == "selected")
    for name in sorted(set(rows) | set(record.groups)):
        info = record.groups.get(name)
        if info is None:
            raise RepsampleError(f"{manifest.path} lists group {_show(name)}, which "
                                 f"{record.path.name} does not: they are not of one run; {fix}")
        if (rows.get(name, 0), selected.get(name, 0)) != (info.images, info.selected):
            raise RepsampleError(
                f"{manifest.path} lists {rows.get(name, 0)} images, {selected.get(name, 0)} "
                f"selected, in group {_show(name)}; {record.path.name} says {info.images} and "
                f"{info.selected}: they are not of one run (edited?); {fix}")


# -- shared -------------------------------------------------------------------------------------


def _read_bytes(path: Path, fix: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RepsampleError(f"{path} not found; {fix}") from None
    except OSError as exc:
        raise os_problem(exc, f"reading {path}") from None
    if not data.strip():
        raise RepsampleError(f"{path} is empty; {fix}")
    return data


def _rerun(output: Path) -> str:
    return f"rerun `repsample select INPUT {output} --overwrite`"


def _show(value: object, limit: int = 60) -> str:
    """A value quoted on one line, cut to a readable length."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)
