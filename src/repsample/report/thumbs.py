"""Thumbnails: small JPEGs named by content hash, written once and reused by every later report.

OUTPUT/.report/thumbs is their cache; report.html carries the ones it shows inside itself, as
data URIs (data_uris), so the page needs no other file.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from repsample.decode import DecodeError, decode_image
from repsample.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

THUMB_DIR = Path(".report") / "thumbs"
THUMB_SIDE = 128  # px, longest side: about as sharp as a 104 px tile needs; fits the size budget
THUMB_QUALITY = 75  # each is carried inside report.html: ~2 kB for a photograph, as base64


def data_uris(output_dir: Path, digests: set[str]) -> dict[str, str]:
    """The thumbnails of these hashes as data: URIs, for those that exist."""
    out = {}
    for digest in sorted(digests):
        try:
            data = (output_dir / THUMB_DIR / f"{digest}.jpg").read_bytes()
        except OSError:
            continue
        out[digest] = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return out


def make_thumbnails(
    output_dir: Path,
    sources: Mapping[str, Sequence[Path | str]],
    workers: int | None = None,
    progress: Progress | None = None,
    previous: Path | None = None,
) -> set[str]:
    """Write OUTPUT/.report/thumbs/<hash>.jpg for every hash missing one; return those that exist.

    ``sources`` lists, per hash, files holding that content, tried in order: the original may
    have moved since the run, the exported copy may not exist (--mode none). ``previous``: the
    result this one replaces; its thumbnails that its inventory proves repsample wrote are
    linked instead of decoded again (a rerun's report costs no decoding).
    """
    folder = output_dir / THUMB_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if previous is not None:
        _link_previous(previous, folder, [h for h in sources if not (folder / f"{h}.jpg").is_file()])
    done = {h for h in sources if (folder / f"{h}.jpg").is_file()}
    todo = [h for h in sources if h not in done]
    bar = (progress or SilentProgress()).stage("thumbs", len(todo))
    workers = workers or min(4, os.cpu_count() or 1)
    failed: list[str] = []
    # Threads suffice: PIL releases the GIL while it decodes and resizes.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for digest, ok in zip(todo, pool.map(lambda h: _write_one(folder, h, sources[h]), todo), strict=True):
            if ok:
                done.add(digest)
            else:
                failed.append(digest)
            bar.advance()
    bar.close()
    if failed:  # one line, not one per image: a moved INPUT can leave thousands without a source
        logger.warning("%d thumbnail(s) could not be made (sources moved or unreadable), e.g. %s",
                       len(failed), ", ".join(str(c) for c in sources[failed[0]]) or failed[0])
    return done


def _link_previous(previous: Path, folder: Path, wanted: Sequence[str]) -> None:
    from repsample.publish import read_inventory

    owned = read_inventory(previous) or {}
    for digest in wanted:
        rel = f"{THUMB_DIR.as_posix()}/{digest}.jpg"
        entry, source = owned.get(rel), previous / rel
        try:
            if entry is None or not entry.matches(os.lstat(source), source):
                continue  # not provably ours (a user's file, or replaced since): make it anew
            os.link(source, folder / f"{digest}.jpg")
        except OSError:  # gone, or a file system without hard links: decode it again
            continue


def _write_one(folder: Path, digest: str, candidates: Sequence[Path | str]) -> bool:
    for source in candidates:
        try:
            image = decode_image(source, min_size=(THUMB_SIDE, THUMB_SIDE))
        except DecodeError as exc:
            logger.debug("no thumbnail from %s: %s", source, exc)
            continue
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        target = folder / f"{digest}.jpg"
        tmp = target.with_name(f".{target.name}.repsample-tmp")
        image.save(tmp, "JPEG", quality=THUMB_QUALITY, optimize=True)
        os.replace(tmp, target)
        return True
    return False
