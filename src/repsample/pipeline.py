"""The orchestrator: scan -> fingerprint -> embed -> cluster/select -> export. It only wires."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repsample import fsio
from repsample._version import __version__
from repsample.config import SelectConfig
from repsample.dataset import Dataset, Prepared, open_dataset, prepare, scored_groups
from repsample.embedding.embed import Embedded, Embedder
from repsample.errors import RepsampleError, UsageError
from repsample.hygiene.files import write_check_csv
from repsample.hygiene.findings import Findings
from repsample.hygiene.leaks import TRAIN_SPLITS, is_train_split
from repsample.hygiene.outliers import ImageScores
from repsample.hygiene.quality import GroupQuality, quality_summary
from repsample.inputs.dispatch import locate
from repsample.inputs.folder import Group
from repsample.inputs.guards import check_cache_apart, check_input
from repsample.models.base import weights_identity
from repsample.output import records
from repsample.output.export import export_file, exported_path, write_manifest, write_run_record
from repsample.output.layout import (
    CHECK_CSV,
    ISSUE_TYPES,
    MANIFEST,
    MANIFEST_FIELDS,
    QUALITY_FIELDS,
    RUN_RECORD,
    STATE,
    format_distance,
    format_weight,
)
from repsample.output.outcome import GroupResult
from repsample.output.publish import OutputTransaction
from repsample.progress import Progress, SilentProgress, StageProgress, current_clock, run_clock, timed
from repsample.selection.cluster import Clustering, choose_k, clustering_key
from repsample.selection.replay import StoredPicks, picks_key
from repsample.selection.strategies import STRATEGIES, ClusterSelector
from repsample.selection.weights import simplex_weights

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class SelectResult:
    """The outcome of ``select``: per-group figures, the manifest rows and where files went."""

    input: Path | str  # a str is an fsspec URL
    output: Path
    config: SelectConfig
    groups: list[GroupResult]
    rows: list[dict[str, Any]] = field(repr=False)
    report: Path | None = None  # OUTPUT/report.html, when written
    destination: str | None = None
    """Where OUTPUT was uploaded when it is a URL (output is then the staging folder, removed)."""

    @property
    def manifest_path(self) -> Path:
        return self.output / MANIFEST

    @property
    def run_record_path(self) -> Path:
        return self.output / RUN_RECORD

    def selected(self, group: str | None = None) -> list[str]:
        """Selected files (paths relative to INPUT), optionally of one group."""
        return [
            r["path"] for r in self.rows
            if r["status"] == "selected" and (group is None or r["group"] == group)
        ]


def select(
    input_dir: str | Path,
    output_dir: str | Path,
    config: SelectConfig | None = None,
    *,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
    **options: Any,
) -> SelectResult:
    """Select a varied, representative subset of every group under input_dir into output_dir.

    Options are SelectConfig fields, given as a config or as keywords
    (``select("data", "out", per_class=200)``). Raises RepsampleError on bad input before
    anything is written. OUTPUT is a transaction (repsample.output.publish): the result is built beside
    it and published whole, or OUTPUT is left as it was.
    """
    config = dataclasses.replace(config or SelectConfig(), **options)
    config.validate()
    target = fsio.as_location(output_dir)
    if isinstance(target, str):
        return _select_to_url(input_dir, target, config, progress, command)
    with run_clock():
        with timed("scan"):
            kept = _kept_paths(config.keep) if config.keep else {}
            src = locate(input_dir)
            if isinstance(src, str):
                fsio.check_url_paths(src, None, config.mode)
            check_input(src, target)
            check_cache_apart(config.cache_path, output_dir=target)
            # INPUT scanned and checked before OUTPUT is taken: a refusal leaves no trace there.
            scanned = prepare(src, config, exclude=(target,), kept=_all_kept(kept), exported=True)
        with OutputTransaction(target, replace=config.overwrite) as output:
            result = _build(src, scanned, output, config, kept, progress or SilentProgress(), command)
            output.publish()
    report = target / result.report.name if result.report is not None else None
    return dataclasses.replace(result, output=target, report=report)


def _build(
    src: Path | str, scanned: Prepared, output: OutputTransaction, config: SelectConfig,
    kept: dict[str, frozenset[str]], progress: Progress, command: Sequence[str] | None,
) -> SelectResult:
    """The whole result, written into the transaction's stage."""
    dst = output.stage
    started = dt.datetime.now(dt.timezone.utc)
    clock = current_clock()
    with open_dataset(src, config, progress, kept=_all_kept(kept), prepared=scanned,
                      near=config.dedup or config.drop_leaks) as data:
        findings = data.findings
        _check_drop_leaks(config.drop_leaks, findings)
        t0 = time.perf_counter()
        scored = scored_groups(data, config.seed)  # a split's groups are scored together
        scoring = (time.perf_counter() - t0) / max(1, len(data.groups))  # an equal share each
        prepared = [_eligible(group, *scored[group.name], data.quality[group.name], data, config,
                              kept.get(group.name, frozenset()), scoring)
                    for group in data.groups]
        budgets = config.budgets([len(p.eligible) for p in prepared])
        fits = [_fit_group(p, data, config, budget) for p, budget in zip(prepared, budgets, strict=True)]
        write_selection = data.write_selection
        originals = {f.rel: f.path for g in data.groups for f in g.files}  # for the report's pictures
    bar = _export_bar(fits, config.mode, progress)
    rows = []
    for fit in fits:
        with timed("write"):
            rows.extend(_manifest_rows(fit, findings))
        t0 = time.perf_counter()
        if config.mode != "none":
            _export_group(fit, dst, config.mode, bar)
        fit.seconds["export"] = time.perf_counter() - t0
    bar.close()

    with timed("write"):
        results = [_group_result(fit, config.keep, data.embedded.computed[fit.group.name])
                   for fit in fits]
        write_check_csv(dst / CHECK_CSV, findings)
        write_manifest(dst / MANIFEST, rows)
        if config.mode == "none" and write_selection is not None:  # a listing or dataset, in its form
            write_selection(rows, MANIFEST_FIELDS, dst)
        record = _run_record(src, output.out, config, data.embedder, results, command, started)
        record["check"] = {**findings.summary(), "dedup": config.dedup, "drop_leaks": config.drop_leaks,
                           "file": CHECK_CSV,
                           "quality": quality_summary(data.quality, data.quality_measured)}
        record["seconds"] = clock.table({r.name: r.seconds for r in results})
        write_run_record(dst / RUN_RECORD, record)
    report = None
    if config.report:
        with timed("report"):
            report = _report(dst, output.out, output.requested, config, progress, originals)
        record["seconds"] = clock.table({r.name: r.seconds for r in results})  # the report's too
        write_run_record(dst / RUN_RECORD, record)
    return SelectResult(src, dst, config, results, rows, report)


def _select_to_url(
    input_dir: str | Path, url: str, config: SelectConfig, progress: Progress | None,
    command: Sequence[str] | None,
) -> SelectResult:
    """OUTPUT is a URL: select into a local staging folder, then upload it whole."""
    import tempfile

    fsio.check_url_paths(fsio.as_location(input_dir), url, config.mode)
    fsio.check_output_url(url, config.overwrite)
    with tempfile.TemporaryDirectory(prefix="repsample-upload-") as tmp:
        local = Path(tmp) / "output"
        result = select(input_dir, local, config, progress=progress, command=command)
        count = fsio.upload_tree(local, url, skip=STATE)
    logger.info("uploaded %d files to %s", count, url)
    return dataclasses.replace(result, report=None, destination=url)


def _report(dst: Path, previous: Path, shown: Path, config: SelectConfig, progress: Progress,
            originals: Mapping[str, Path | str]) -> Path | None:
    """The selection is complete by now: a report that cannot be written is a warning, not a loss."""
    from repsample.report import build_report

    try:
        return build_report(dst, cache=config.cache_path, progress=progress, staged=True,
                            previous=previous, originals=originals)
    except (RepsampleError, OSError) as exc:
        logger.warning("report not written (%s); rerun `repsample report %s`", exc, shown)
        return None


@dataclass(frozen=True)
class _Eligible:
    """One group before selection: its rows, their scores, which may be picked and why not.

    Rows are those of ``embedded.vectors``; ``eligible`` lists the ones selection sees (not a
    duplicate dedup set aside, not a dropped leak or outlier: ``reasons`` says which), and the
    selector numbers them by position in that list.
    """

    group: Group
    embedded: Embedded
    scores: ImageScores  # per row
    quality: GroupQuality  # per row
    reasons: dict[int, str]  # row -> why it is not eligible: duplicate, leak, outlier, an issue
    eligible: list[int]
    keep_rows: list[int]  # positions in eligible of the rows an earlier selection kept (--keep)
    elapsed: float  # seconds spent on the group so far, scoring included

    @property
    def excluded(self) -> int:
        return len(self.embedded.vectors) - len(self.eligible)


@dataclass(frozen=True)
class _GroupFit(_Eligible):
    """One group selected, before export: what was picked among its eligible rows."""

    selector: ClusterSelector | None  # None: no eligible image
    chosen: set[int]  # positions in eligible
    weights: dict[int, float]  # chosen position -> its share of the eligible rows (sum 1)
    budget: int
    seconds: dict[str, float]

    @property
    def kept(self) -> int:
        """Of the chosen, rows an earlier selection kept (--keep)."""
        return len(self.keep_rows)


def _eligible(group: Group, embedded: Embedded, scores: ImageScores, quality: GroupQuality,
              data: Dataset, config: SelectConfig, kept: frozenset[str], scoring: float) -> _Eligible:
    """scoring: the seconds this group's share of scoring took (before)."""
    t0 = time.perf_counter() - scoring
    reasons = _exclusions(group, embedded, data.findings, config, kept, scores, quality)
    eligible = [r for r in range(len(embedded.vectors)) if r not in reasons]
    position = {r: i for i, r in enumerate(eligible)}
    keep_rows = [position[r] for f, r in zip(group.files, embedded.rows, strict=True)
                 if r is not None and f.rel in kept]
    return _Eligible(group, embedded, scores, quality, reasons, eligible, keep_rows,
                     time.perf_counter() - t0)


def _fit_group(prepared: _Eligible, data: Dataset, config: SelectConfig, budget: int) -> _GroupFit:
    group, embedded, eligible, keep_rows = (prepared.group, prepared.embedded, prepared.eligible,
                                            prepared.keep_rows)
    t0 = time.perf_counter() - prepared.elapsed
    selector, chosen, weights = None, set(), {}
    if eligible and budget > 0:  # with --total, a group may get no share
        selector = STRATEGIES.get(config.strategy)(
            budget, allocation=config.allocation, k_min=config.k_min, k_max=config.k_max,
            silhouette_sample=config.silhouette_sample, random_state=config.seed,
            **config.strategy_params)
        X = embedded.vectors[eligible]
        row_hashes = embedded.row_hashes
        rows = [row_hashes[r] for r in eligible]
        shares = _fit_selector(selector, X, rows, keep_rows, data, config)
        chosen = set(selector.selected_indices_.tolist())
        weights = dict(zip(sorted(chosen), shares.tolist(), strict=True))
    seconds = {**data.embedded.seconds[group.name], "select": time.perf_counter() - t0}
    return _GroupFit(**vars(prepared), selector=selector, chosen=chosen, weights=weights,
                     budget=budget, seconds=seconds)


def _exclusions(group: Group, embedded: Embedded, findings: Findings, config: SelectConfig,
                kept: frozenset[str], scores: ImageScores, quality: GroupQuality) -> dict[int, str]:
    """The rows selection may not pick, and why: a duplicate dedup sets aside, a leak --drop-leaks
    drops, one of the top --drop-outliers share by outlier score, an image with an issue
    --drop-issues names (the first of them); an image an earlier selection kept always stays."""
    reasons: dict[int, str] = {}
    protected: set[int] = set()
    for f, r in zip(group.files, embedded.rows, strict=True):
        if r is None:
            continue
        if f.rel in kept:
            protected.add(r)
        elif findings.excluded(f.rel, config.dedup, drop_leaks=False):
            reasons[r] = "duplicate"
        elif findings.excluded(f.rel, dedup=False, drop_leaks=config.drop_leaks):
            reasons[r] = "leak"
    for r in scores.top_outliers(config.drop_outliers, frozenset(protected)):
        reasons.setdefault(r, "outlier")
    dropped = ISSUE_TYPES if "all" in config.drop_issues else config.drop_issues
    for r, issues in quality.flagged(dropped).items():
        if r not in protected:
            reasons.setdefault(r, issues[0])
    if reasons:
        logger.info("group %s: %d images not eligible (duplicates, leaks, outliers or issues)",
                    group.name, len(reasons))
    return reasons


def _manifest_rows(fit: _GroupFit, findings: Findings) -> list[dict[str, Any]]:
    """One manifest row per file of the group, in path order."""
    position = {r: i for i, r in enumerate(fit.eligible)}
    ranks = _ranks(fit.selector, fit.chosen) if fit.selector is not None else {}
    rows = []
    embedded = fit.embedded
    for f, digest, row, error in zip(fit.group.files, embedded.hashes, embedded.rows, embedded.errors,
                                     strict=True):
        entry: dict[str, Any] = {"path": f.rel, "group": fit.group.name, "hash": digest,
                                 "error": error, **findings.manifest_fields(f.rel)}
        if row is not None:
            entry.update(typicality=format_distance(fit.scores.typicality[row]),
                         outlier_score=format_distance(fit.scores.outlier[row]),
                         uniqueness=format_distance(fit.scores.uniqueness[row]),
                         reason=fit.reasons.get(row), **_quality_cells(fit.quality, row))
        at = position.get(row) if row is not None and fit.selector is not None else None
        if at is None:
            entry["status"] = "error" if error is not None else "not_selected"  # or set aside
        else:
            assert fit.selector is not None  # at is only set when it ran
            label = int(fit.selector.labels_[at])
            entry["cluster"] = label if label >= 0 else None
            entry["distance"] = format_distance(float(fit.selector.distances_[at]))
            entry["status"] = "selected" if at in fit.chosen else "not_selected"
            entry["rank"] = ranks.get(at)
            entry["weight"] = format_weight(fit.weights[at]) if at in fit.weights else None
        rows.append(entry)
    return rows


def _quality_cells(quality: GroupQuality, row: int) -> dict[str, str]:
    image = quality.images[row]
    return {**{c: format_distance(image.scores[c]) for c in QUALITY_FIELDS},
            "issues": ";".join(image.issues)}


def _export_bar(fits: Sequence[_GroupFit], mode: str, progress: Progress) -> StageProgress:
    """One bar over every group's export, its whole total known before the first file."""
    if mode == "none":
        return SilentProgress().stage("export", 0)  # nothing is exported: no bar that never moves
    return progress.stage("export", sum(len(fit.chosen) for fit in fits))


def _export_group(fit: _GroupFit, dst: Path, mode: str, bar: StageProgress) -> None:
    """Copy (or link) the group's selected files into OUTPUT; each kind of warning once."""
    picked = {fit.eligible[i] for i in fit.chosen}
    warned: set[str] = set()
    for f, digest, row in zip(fit.group.files, fit.embedded.hashes, fit.embedded.rows, strict=True):
        if row is None or row not in picked:
            continue
        warning = export_file(f, digest, exported_path(dst, fit.group.name, f.rel), mode)
        if warning and warning not in warned:
            warned.add(warning)
            logger.warning("%s (first case: %s)", warning, f.rel)
        bar.advance()


def _images(n: int, kind: str = "") -> str:
    """"1 eligible image", "2 eligible images"."""
    return f"{n} {kind}image{'' if n == 1 else 's'}"


def _group_result(fit: _GroupFit, keep: Path | None, embedded_now: int) -> GroupResult:
    eligible, selector = len(fit.eligible), fit.selector
    note = None
    if fit.budget == 0:
        note = "no share of --total: the other groups took it"
    elif eligible <= fit.budget:
        note = f"{_images(eligible, 'eligible ')}, budget {fit.budget}: kept all, no clustering"
        logger.info("group %s: %s", fit.group.name, note)
    elif fit.kept >= fit.budget:
        note = f"{_images(fit.kept)} kept from {keep}, budget {fit.budget}: nothing added"
    elif fit.kept:
        note = f"{_images(fit.kept)} kept from {keep}, {len(fit.chosen) - fit.kept} added"
    return GroupResult(
        name=fit.group.name,
        images=len(fit.group.files),
        errors=sum(r is None for r in fit.embedded.rows),
        selected=len(fit.chosen),
        k=int(selector.k_) if selector is not None else 0,
        silhouettes=dict(selector.silhouette_scores_) if selector is not None else {},
        silhouette_sample=selector.silhouette_sample_ if selector is not None else None,
        seconds={k: round(v, 4) for k, v in fit.seconds.items()},
        note=note,
        embedded=embedded_now,
        excluded=fit.excluded,
        outliers=sum(reason == "outlier" for reason in fit.reasons.values()),
        outside_links=fit.group.outside_links,
    )


def _fit_selector(selector: ClusterSelector, X: np.ndarray, rows: list[str], keep: list[int],
                  data: Dataset, config: SelectConfig) -> np.ndarray:
    """Fit selector on X (rows: their content hashes); the weights of its picks, sorted by row.

    Above the budget, the clustering and then the picks with their weights are stored results
    when a run made them from the same vectors and settings: a rerun on unchanged data redoes
    neither; a group kept whole has nothing worth storing, a strategy of the user's own picks
    every time (its code may change under the same name)."""
    if len(X) <= selector.n_select:
        selector.fit(X, keep=keep)
        return simplex_weights(X, selector.selected_indices_, config.seed)
    vectors = clustering_key(data.embedder.key, rows, config.k_min, config.k_max, config.seed,
                             config.silhouette_sample)
    clustering = data.cache.remember(
        vectors, lambda: choose_k(X, config.k_min, config.k_max, config.seed, config.silhouette_sample),
        Clustering.to_bytes, Clustering.from_bytes, "clustering")
    key = picks_key(selector, vectors, keep)
    stored = (data.cache.recall(key, lambda b: StoredPicks.from_bytes(b, len(X), keep), "selection",
                                "selecting again") if key is not None else None)
    selector.fit(X, keep=keep, clustering=clustering, picks=None if stored is None else stored.new)
    if stored is None:
        stored = StoredPicks(selector.new_indices_,
                             simplex_weights(X, selector.selected_indices_, config.seed))
        if key is not None:
            data.cache.put_blob(key, stored.to_bytes())
    return stored.weights


def _check_drop_leaks(drop_leaks: bool, findings: Findings) -> None:
    if drop_leaks and findings.leaks and not any(is_train_split(s) for s in findings.splits):
        raise UsageError(
            f"found no training split among {', '.join(findings.splits)}; it drops leaked images "
            f"from a split named {' or '.join(TRAIN_SPLITS)} (first folder under INPUT)",
            option="drop_leaks")


def _all_kept(kept: Mapping[str, frozenset[str]]) -> set[str]:
    return {p for paths in kept.values() for p in paths}


def _kept_paths(manifest: Path) -> dict[str, frozenset[str]]:
    """Selected paths per group in an earlier manifest (paths relative to INPUT), read strictly;
    one that selects nothing cannot be what the user meant to keep."""
    kept = records.kept_paths(manifest)
    if not kept:
        raise UsageError(f"{manifest} selects no image: nothing to keep", option="keep")
    return kept


def _ranks(selector: ClusterSelector, chosen: set[int]) -> dict[int, int]:
    """The strategy's pick order within each cluster (1 = picked first); none when kept whole."""
    return {i: int(selector.pick_order_[i]) for i in chosen if selector.pick_order_[i] > 0}


def _run_record(
    src: Path | str,
    dst: Path,
    config: SelectConfig,
    embedder: Embedder,
    results: list[GroupResult],
    command: Sequence[str] | None,
    started: dt.datetime,
) -> dict[str, Any]:
    """run.json: what ran, on what, with which versions, and what it gave per group."""
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
    params["cache"] = str(config.cache_path)
    if not config.strategy_params:  # a run that sets none records what it always did
        del params["strategy_params"]
    totals = ("images", "errors", "selected", "embedded", "excluded", "outliers")
    return {
        "repsample_version": __version__,
        "command": list(command) if command is not None else None,
        "input": fsio.display(src),
        "output": str(dst.resolve()),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "model": _model_record(embedder, config),
        "versions": _versions(),
        "totals": {"groups": len(results), **{t: sum(getattr(r, t) for r in results) for t in totals}},
        "groups": {r.name: r.record() for r in results},
    }


def _model_record(embedder: Embedder, config: SelectConfig) -> dict[str, Any]:
    # Device and backend stay unsettled when every embedding came from the cache: nothing ran.
    return {
        "name": embedder.spec.name,
        "weights": config.weights,
        "weights_identity": weights_identity(embedder.spec, config.weights),
        "cache_key": embedder.key,
        "dim": embedder.spec.dim,
        "device": embedder.device if embedder.resolved else f"{config.device} (nothing embedded)",
        "backend": embedder.backend if embedder.resolved else f"{config.backend} (nothing embedded)",
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # metadata only: imports nothing

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # torch is an extra: the default path runs without it
            return "not installed"

    return {"python": platform.python_version(), "numpy": np.__version__,
            **{name: installed(name) for name in ("torch", "onnxruntime", "scikit-learn", "pillow",
                                                  "faiss-cpu")}}

