"""The orchestrator: scan -> fingerprint -> embed -> cluster/select -> export. It only wires."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repsample import fsio, records
from repsample._version import __version__
from repsample.cache import EmbeddingCache
from repsample.cluster import Clustering, choose_k, clustering_key
from repsample.config import SelectConfig
from repsample.embed import Embedder, decode_workers, exported_models_dir, gather
from repsample.engines import EmbedOptions, run_embed_stage
from repsample.errors import RepsampleError
from repsample.export import (
    MANIFEST,
    RUN_RECORD,
    check_paths,
    export_file,
    exported_path,
    format_distance,
    write_manifest,
    write_run_record,
)
from repsample.fingerprint import Fingerprint
from repsample.hygiene import CHECK_CSV, Findings, write_check_csv
from repsample.hygiene.leaks import TRAIN_SPLITS, is_train_split
from repsample.hygiene.run import hygiene_pass
from repsample.models.base import weights_identity
from repsample.progress import Progress, SilentProgress
from repsample.publish import STATE, OutputTransaction
from repsample.scan import Group, scan
from repsample.select import STRATEGIES, ClusterSelector

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class GroupResult:
    """What happened to one group."""

    name: str
    images: int
    errors: int
    selected: int
    k: int  # 0 when the group was kept whole without clustering
    silhouettes: dict[int, float]
    silhouette_sample: int | None
    seconds: dict[str, float]
    note: str | None = None
    embedded: int = 0  # images decoded and embedded in this run (0: all from the cache)
    excluded: int = 0  # valid images not eligible: duplicates (--dedup), leaks (--drop-leaks)
    outside_links: int = 0  # image symlinks leading outside INPUT, not followed


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
    anything is written. OUTPUT is a transaction (repsample.publish): the result is built beside
    it and published whole, or OUTPUT is left as it was.
    """
    config = dataclasses.replace(config or SelectConfig(), **options)
    config.validate()
    target = fsio.as_location(output_dir)
    if isinstance(target, str):
        return _select_to_url(input_dir, target, config, progress, command)
    kept = _kept_paths(config.keep) if config.keep else {}
    src = fsio.as_location(input_dir)
    if isinstance(src, str):
        fsio.check_url_paths(src, None, config.mode)
    else:
        check_paths(src, target)
    with OutputTransaction(target, replace=config.overwrite) as output:
        result = _build(src, output, config, kept, progress or SilentProgress(), command)
        output.publish()
    report = target / result.report.name if result.report is not None else None
    return dataclasses.replace(result, output=target, report=report)


def _build(
    src: Path | str, output: OutputTransaction, config: SelectConfig,
    kept: dict[str, frozenset[str]], progress: Progress, command: Sequence[str] | None,
) -> SelectResult:
    """The whole result, written into the transaction's stage."""
    dst = output.stage
    started = dt.datetime.now(dt.timezone.utc)
    groups = scan(src, config.extensions, config.groups, follow_symlinks=config.follow_symlinks,
                  exclude=(output.out, dst))
    cache_path = config.cache_path
    embedder = Embedder(config.model, config.weights, config.device, config.backend,
                        exported_models_dir(cache_path), config.precision)
    workers = decode_workers(config.workers)

    with EmbeddingCache(cache_path) as cache:
        # The engine (local or ray) hashes, decodes and embeds; everything after reads the cache.
        embedded = run_embed_stage(
            config.engine, groups, cache, embedder,
            EmbedOptions(config.batch_size, config.workers, config.device, config.backend,
                         config.ray_address),
            progress)
        timings, prints, computed = embedded.seconds, embedded.prints, embedded.computed
        # Between embedding and selection: dedup per group, leaks across groups (repsample check).
        findings = hygiene_pass(groups, prints, cache, embedder, config.dup_threshold,
                                {p for paths in kept.values() for p in paths}, max(1, workers),
                                progress, near=config.dedup or config.drop_leaks)
        _check_drop_leaks(config, findings)

        write_check_csv(dst / CHECK_CSV, findings)
        results, rows = [], []
        for group in groups:
            result, group_rows = _select_group(group, prints[group.name], cache, embedder, config,
                                               dst, progress, timings[group.name],
                                               kept.get(group.name, frozenset()), findings)
            result = dataclasses.replace(result, embedded=computed[group.name],
                                         outside_links=group.outside_links)
            results.append(result)
            rows.extend(group_rows)

    write_manifest(dst / MANIFEST, rows)
    record = _run_record(src, output.out, config, embedder, results, command, started)
    record["check"] = {**findings.summary(), "dedup": config.dedup, "drop_leaks": config.drop_leaks,
                       "file": CHECK_CSV}
    write_run_record(dst / RUN_RECORD, record)
    report = _report(dst, output.requested, config, progress) if config.report else None
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


def _report(dst: Path, shown: Path, config: SelectConfig, progress: Progress) -> Path | None:
    """The selection is complete by now: a report that cannot be written is a warning, not a loss."""
    from repsample.report import build_report

    try:
        return build_report(dst, cache=config.cache_path, progress=progress, staged=True)
    except (RepsampleError, OSError) as exc:
        logger.warning("report not written (%s); rerun `repsample report %s`", exc, shown)
        return None


def _select_group(
    group: Group,
    prints: list[Fingerprint],
    cache: EmbeddingCache,
    embedder: Embedder,
    config: SelectConfig,
    dst: Path,
    progress: Progress,
    seconds: dict[str, float],
    kept: frozenset[str] = frozenset(),
    findings: Findings | None = None,
) -> tuple[GroupResult, list[dict[str, Any]]]:
    embedded = gather(prints, cache, embedder)
    t0 = time.perf_counter()
    # Only eligible rows are clustered and selected: with nothing duplicated, that is all of them.
    excluded = {r for f, r in zip(group.files, embedded.rows, strict=True) if r is not None
                and findings is not None and f.rel not in kept
                and findings.excluded(f.rel, config.dedup, config.drop_leaks)}
    eligible = [r for r in range(len(embedded.vectors)) if r not in excluded]
    position = {r: i for i, r in enumerate(eligible)}
    valid = len(eligible)
    budget = config.budget(valid)
    selector: ClusterSelector = STRATEGIES.get(config.strategy)(
        budget,
        allocation=config.allocation,
        k_min=config.k_min,
        k_max=config.k_max,
        silhouette_sample=config.silhouette_sample,
        random_state=config.seed,
    )
    keep_rows = [position[r] for f, r in zip(group.files, embedded.rows, strict=True)
                 if r is not None and f.rel in kept]
    if valid:
        X = embedded.vectors[eligible]
        row_hash = {r: h for h, r in zip(embedded.hashes, embedded.rows, strict=True)
                    if r is not None and h is not None}
        clustering = (_clustering(X, [row_hash[r] for r in eligible], embedder.key, config, cache)
                      if valid > budget else None)
        selector.fit(X, keep=keep_rows, clustering=clustering)
        chosen = set(selector.selected_indices_.tolist())
    else:
        chosen = set()
    seconds["select"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    bar = progress.stage("export", len(chosen))
    rows = []
    warned: set[str] = set()
    ranks = _ranks(selector, chosen) if valid else {}
    per_file = zip(group.files, embedded.hashes, embedded.rows, embedded.errors, strict=True)
    for f, digest, row, error in per_file:
        entry: dict[str, Any] = {"path": f.rel, "group": group.name, "hash": digest, "error": error}
        if findings is not None:
            entry.update(findings.manifest_fields(f.rel))
        row = position.get(row) if row is not None else None
        if row is None and error is None:
            entry["status"] = "not_selected"  # excluded: a duplicate, or a dropped leak
        elif row is None:
            entry["status"] = "error"
        else:
            label = int(selector.labels_[row])
            entry["cluster"] = label if label >= 0 else None
            entry["distance"] = format_distance(float(selector.distances_[row]))
            entry["status"] = "selected" if row in chosen else "not_selected"
            entry["rank"] = ranks.get(row)
            if row in chosen and config.mode != "none":
                warning = export_file(f, digest, exported_path(dst, group.name, f.rel), config.mode)
                if warning and warning not in warned:
                    warned.add(warning)
                    logger.warning("%s (first case: %s)", warning, f.rel)
                bar.advance()
        rows.append(entry)
    bar.close()
    seconds["export"] = time.perf_counter() - t0

    errors = sum(r is None for r in embedded.rows)
    note = None
    if excluded:
        logger.info("group %s: %d images not eligible (duplicates or leaks)", group.name, len(excluded))
    if valid <= budget:
        note = f"{valid} valid images, budget {budget}: kept all, no clustering"
        logger.info("group %s: %s", group.name, note)
    elif len(keep_rows) >= budget:
        note = f"{len(keep_rows)} images kept from {config.keep}, budget {budget}: nothing added"
    elif keep_rows:
        note = f"{len(keep_rows)} images kept from {config.keep}, {len(chosen) - len(keep_rows)} added"
    result = GroupResult(
        name=group.name,
        images=len(group.files),
        errors=errors,
        selected=len(chosen),
        k=int(selector.k_) if valid else 0,
        silhouettes=dict(selector.silhouette_scores_) if valid else {},
        silhouette_sample=selector.silhouette_sample_ if valid else None,
        seconds={k: round(v, 4) for k, v in seconds.items()},
        note=note,
        excluded=len(excluded),
    )
    return result, rows


def _clustering(
    X: np.ndarray, hashes: list[str], vectors: str, config: SelectConfig, cache: EmbeddingCache
) -> Clustering:
    """choose_k on X, or its stored result for the same vectors and sweep (a rerun's case)."""
    key = clustering_key(vectors, hashes, config.k_min, config.k_max, config.seed,
                         config.silhouette_sample)
    stored = cache.get_blob(key)
    if stored is not None:
        try:
            return Clustering.from_bytes(stored)
        except Exception:  # a damaged entry is only a lost shortcut: compute it again
            logger.warning("stored clustering unreadable; computing it again")
    clustering = choose_k(X, config.k_min, config.k_max, config.seed, config.silhouette_sample)
    cache.put_blob(key, clustering.to_bytes())
    return clustering


def _check_drop_leaks(config: SelectConfig, findings: Findings) -> None:
    if config.drop_leaks and findings.leaks and not any(is_train_split(s) for s in findings.splits):
        raise RepsampleError(
            f"--drop-leaks: no training split among {', '.join(findings.splits)}; it drops leaked "
            f"images from a split named {' or '.join(TRAIN_SPLITS)} (first folder under INPUT)"
        )


def _kept_paths(manifest: Path) -> dict[str, frozenset[str]]:
    """Selected paths per group in an earlier manifest (paths relative to INPUT), read strictly."""
    return records.kept_paths(manifest)


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
    from importlib.metadata import version

    import PIL
    import sklearn

    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
    params["cache"] = str(config.cache_path)
    return {
        "repsample_version": __version__,
        "command": list(command) if command is not None else None,
        "input": fsio.display(src),
        "output": str(dst.resolve()),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": params,
        "model": {
            "name": embedder.spec.name,
            "weights": config.weights,
            "weights_identity": weights_identity(embedder.spec, config.weights),
            "cache_key": embedder.key,
            "dim": embedder.spec.dim,
            # Unsettled when every embedding came from the cache: nothing ran on any device.
            "device": embedder.device if embedder.resolved else f"{config.device} (nothing embedded)",
            "backend": embedder.backend if embedder.resolved else f"{config.backend} (nothing embedded)",
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": version("torch"),
            "scikit-learn": sklearn.__version__,
            "pillow": PIL.__version__,
        },
        "totals": {
            "groups": len(results),
            "images": sum(r.images for r in results),
            "errors": sum(r.errors for r in results),
            "selected": sum(r.selected for r in results),
            "embedded": sum(r.embedded for r in results),
            "excluded": sum(r.excluded for r in results),
        },
        "groups": {
            r.name: {
                "images": r.images,
                "errors": r.errors,
                "valid": r.images - r.errors,
                "k": r.k,
                "silhouette": {str(k): round(v, 6) for k, v in r.silhouettes.items()},
                "silhouette_sample": r.silhouette_sample,
                "selected": r.selected,
                "embedded": r.embedded,
                "excluded": r.excluded,
                "note": r.note,
                "seconds": r.seconds,
            }
            for r in results
        },
    }
