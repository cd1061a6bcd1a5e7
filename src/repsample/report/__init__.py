"""The report: OUTPUT/report.html, one self-contained page that shows why each image was chosen.

Built from what a run leaves in OUTPUT (manifest.csv, run.json) plus the embedding cache for the
maps. The page carries its pictures inside (data URIs; thumbnails are cached once under
OUTPUT/.report/thumbs for later rebuilds), so report.html alone can be mailed or moved and opens
from the file system with no network and no server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from repsample._version import __version__
from repsample.output.files import write_atomic
from repsample.output.layout import REPORT
from repsample.output.records import read_run
from repsample.progress import Progress
from repsample.report import evaluation, quality
from repsample.report.embedmap import MapPoints, check_projection, project_group
from repsample.report.gather import RunData, load_vectors, read_run_data, thumbnail_hash
from repsample.report.groups import group_section
from repsample.report.html import Thumbs
from repsample.report.optional_sections import check_section, evaluation_section, stale_evaluation_note
from repsample.report.page import header, overview, page, toc
from repsample.report.plan import Caps, GroupPlan, plan, shown_items
from repsample.report.thumbs import data_uris, make_thumbnails

__all__ = ["REPORT", "Caps", "build_report", "write_report"]

logger = logging.getLogger(__name__)

OPEN_GROUPS = 3  # more groups than this start folded, so a large report opens short and fast


def build_report(
    output_dir: str | Path,
    *,
    cache: str | Path | None = None,
    projection: str = "auto",
    caps: Caps | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    staged: bool = False,
    previous: Path | None = None,
    originals: Mapping[str, Path | str] | None = None,
) -> Path:
    """Write OUTPUT/report.html and return its path.

    cache overrides the embedding cache recorded in run.json; projection is 'auto' (UMAP where
    installed, else PCA), 'pca' or 'umap'. Raises RepsampleError when OUTPUT holds no finished run.
    The report is published with OUTPUT's transaction (repsample.output.publish): whole, or not at all.
    staged: output_dir is a stage the caller's transaction owns (select's): write in place;
    previous: the result it replaces, whose thumbnails are reused where provably repsample's.
    """
    if not staged:
        from repsample.output.publish import update_output

        check_projection(projection)
        read_run(Path(output_dir))  # checked on OUTPUT itself, so a problem is named by its own path
        update_output(output_dir, lambda stage: build_report(
            stage, cache=cache, projection=projection, caps=caps, workers=workers, progress=progress,
            staged=True))
        return Path(output_dir) / REPORT
    return write_report(read_run_data(Path(output_dir)), cache=cache, projection=projection,
                        caps=caps, workers=workers, progress=progress, previous=previous,
                        originals=originals)


def write_report(
    run: RunData,
    *,
    cache: str | Path | None = None,
    projection: str = "auto",
    caps: Caps | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    previous: Path | None = None,
    originals: Mapping[str, Path | str] | None = None,
) -> Path:
    """Write run.output/report.html from what was read of it (build_report's second half).

    originals: where each manifest path's image was read (select passes it: a listing's or a
    dataset's images are not at INPUT/<manifest path>)."""
    out = run.output
    caps = caps or Caps()
    plans = plan(run, caps)
    t0 = time.perf_counter()
    available = make_thumbnails(out, _thumbnail_sources(run, plans, caps, originals or {}),
                                workers, progress, previous)
    thumb_seconds = time.perf_counter() - t0
    maps, map_notes = _maps(run, cache, projection)
    link_exports = run.record.mode != "none"
    generated = f"repsample {__version__}"

    thumbs = Thumbs(out, data_uris(out, available), run, link_exports)
    scored = evaluation.parse(run.evaluation) if run.evaluation is not None else None
    mmd = {s.name: s.figures.get("mmd") for s in scored.groups} if scored is not None else {}
    sections = [header(run), "<main>", toc(run), overview(run, {"thumbnails": thumb_seconds})]
    if run.evaluation is not None:
        sections.append(evaluation_section(run.evaluation, run.evaluation_state == "current"))
    elif run.evaluation_state == "stale":
        sections.append(stale_evaluation_note())
    if run.check is not None:
        sections.append(check_section(run, thumbs, caps.check_rows))
    if quality.present(run):
        sections.append(quality.section(run, thumbs, caps.issues))
    opened = len(run.groups) <= OPEN_GROUPS
    for i, group in enumerate(run.groups):
        sections.append(group_section(i, group, maps[i], map_notes[i], thumbs, caps, plans[i],
                                      mmd.get(group.name), opened))
    sections.append("</main>")
    report = out / REPORT
    write_atomic(report, page("repsample report", "".join(sections), generated))
    logger.info("report written to %s", report)
    return report


def _thumbnail_sources(run: RunData, plans: list[GroupPlan], caps: Caps,
                       originals: Mapping[str, Path | str]) -> dict[str, list[Path | str]]:
    """Per content hash, the files that may hold it: the original, then the exported copy."""
    sources: dict[str, list[Path | str]] = {}
    for item in shown_items(run, plans, caps):
        digest = thumbnail_hash(item)
        if digest is None:
            continue
        candidates = sources.setdefault(digest, [])
        if item.path in originals:
            candidates.append(originals[item.path])
        elif run.input_dir is not None:
            candidates.append(run.input_dir / item.path)
        if item.status == "selected":
            candidates.append(run.output / item.group / item.name)
    return sources


def _maps(run: RunData, cache: str | Path | None,
          projection: str) -> tuple[list[MapPoints | None], list[str]]:
    cache_path = Path(cache or run.record.cache)
    hashes = [i.hash for g in run.groups for i in g.items if i.hash]
    vectors = (load_vectors(cache_path, run.record.cache_key, hashes)
               if str(cache_path) not in ("", ".") else None)
    seed = 42 if run.record.seed is None else run.record.seed  # select's default
    maps: list[MapPoints | None] = []
    notes: list[str] = []
    for group in run.groups:
        if vectors is None:
            maps.append(None)
            notes.append(f"No map: the embedding cache {cache_path} is not here; rebuild with "
                         "`repsample report OUTPUT --cache PATH`.")
            continue
        maps.append(project_group(group, vectors, seed, projection))
        notes.append("No map: fewer than two images have an embedding in the cache.")
    return maps, notes
