"""``repsample check``: the hygiene pass on its own, and the same pass as ``select`` runs it."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repsample.cache import EmbeddingCache
from repsample.config import SelectConfig
from repsample.embed import Embedder, decode_workers, exported_models_dir
from repsample.engines import EmbedOptions, run_embed_stage
from repsample.export import check_paths, write_atomic
from repsample.fingerprint import Fingerprint
from repsample.hygiene.findings import Findings, find
from repsample.hygiene.near import Pairs
from repsample.hygiene.output import CHECK_CSV, write_check_csv
from repsample.hygiene.pairs import near_duplicates
from repsample.progress import Progress, SilentProgress
from repsample.publish import OutputTransaction
from repsample.scan import Group, scan

logger = logging.getLogger(__name__)

CHECK_JSON = "check.json"


@dataclass(frozen=True)
class CheckResult:
    """The findings and where they were written."""

    findings: Findings
    csv_path: Path
    json_path: Path
    rows: int

    def summary(self) -> dict[str, object]:
        return self.findings.summary()


def hygiene_pass(
    groups: Sequence[Group],
    prints: Mapping[str, Sequence[Fingerprint]],
    cache: EmbeddingCache,
    embedder: Embedder,
    threshold: float,
    kept: Collection[str] = (),
    workers: int = 2,
    progress: Progress | None = None,
    near: bool = True,
) -> Findings:
    """Find duplicates and leaks among already embedded groups (prints: per group, file order).

    near=False skips the near-duplicate search (a select that neither dedups nor drops leaks
    needs none): exact copies are still found, from the content hashes.
    """
    paths: list[str] = []
    names: list[str] = []
    hashes: list[str | None] = []
    errors: dict[int, str] = {}
    file_of: dict[str, Path | str] = {}
    for group in groups:
        for f, fp in zip(group.files, prints[group.name], strict=True):
            if fp.hash is None:
                errors[len(paths)] = fp.error or "cannot read file"
            else:
                file_of.setdefault(fp.hash, f.path)
            paths.append(f.rel)
            names.append(group.name)
            hashes.append(fp.hash)
    entries = cache.get_many([h for h in hashes if h], embedder.key)
    vectors = {h: e.vector for h, e in entries.items() if e.vector is not None}
    for i, h in enumerate(hashes):
        if h is not None and h not in vectors:
            entry = entries.get(h)
            errors[i] = (entry.error if entry else None) or "not embedded"
    kept_files = [i for i, p in enumerate(paths) if p in kept]

    def search(distinct: list[str], X: np.ndarray) -> Pairs:
        if not near:
            return Pairs.empty()
        return near_duplicates(distinct, X, threshold, embedder.key, cache, file_of, workers, progress)

    findings = find(paths, names, hashes, vectors, errors, threshold, kept_files, search, progress)
    return dataclasses.replace(findings, near_searched=near)


def check(
    input_dir: str | Path,
    output_dir: str | Path,
    config: SelectConfig | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> CheckResult:
    """Find unreadable files, duplicates and split leaks under input_dir; write OUTPUT/check.csv.

    Uses the embedding options of a SelectConfig (model, weights, cache, dup_threshold, ...),
    given as a config or as keywords; embeddings come from (and go to) the same cache as select's.
    """
    config = dataclasses.replace(config or SelectConfig(), **options)
    config.validate()
    src, dst = Path(input_dir), Path(output_dir)
    check_paths(src, dst)
    with OutputTransaction(dst, replace=overwrite) as output:
        findings, model = _find(src, config, (output.out, output.stage), progress or SilentProgress())
        rows = write_check_csv(output.stage / CHECK_CSV, findings)
        record = {"input": str(src.resolve()), "model": model, "summary": findings.summary()}
        write_atomic(output.stage / CHECK_JSON, json.dumps(record, indent=2) + "\n")
        output.publish()
    return CheckResult(findings, dst / CHECK_CSV, dst / CHECK_JSON, rows)


def _find(src: Path, config: SelectConfig, exclude: tuple[Path, ...],
          progress: Progress) -> tuple[Findings, str]:
    """Scan, embed (or read the cache) and look for duplicates and leaks; also the model's key."""
    groups = scan(src, config.extensions, config.groups, follow_symlinks=config.follow_symlinks,
                  exclude=exclude)
    cache_path = config.cache_path
    embedder = Embedder(config.model, config.weights, config.device, config.backend,
                        exported_models_dir(cache_path), config.precision)
    workers = decode_workers(config.workers)
    with EmbeddingCache(cache_path) as cache:
        # The same local embed stage as select's: what one fills, the other finds in the cache.
        stage = run_embed_stage("local", groups, cache, embedder,
                                EmbedOptions(config.batch_size, config.workers), progress)
        findings = hygiene_pass(groups, stage.prints, cache, embedder, config.dup_threshold,
                                workers=max(1, workers), progress=progress)
    return findings, embedder.key
