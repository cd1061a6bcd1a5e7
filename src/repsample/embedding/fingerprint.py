"""Fingerprint: the content hash of every file, read only when its stat is new to the cache.

A file counts as unchanged while its path, size, mtime, inode and ctime all are (git's rule):
a file rewritten in place with its size and mtime set back still gets a new ctime.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from repsample.cache import ContentCache, FileStat, path_key
from repsample.fsio import hash_file
from repsample.inputs.folder import Group, ImageFile
from repsample.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    """A file's content hash, or why it could not be read."""

    hash: str | None
    error: str | None = None


def file_stat(image: ImageFile) -> FileStat:
    """The fast path's key for a scanned file."""
    return FileStat(path_key(image.path), image.size, image.mtime_ns, image.ino, image.ctime_ns)


def fingerprint(
    files: Sequence[ImageFile],
    cache: ContentCache,
    workers: int = 2,
    progress: Progress | None = None,
) -> list[Fingerprint]:
    """One Fingerprint per file, in order. Unreadable files become errors, not exceptions."""
    bar = (progress or SilentProgress()).stage("hash", len(files))
    stats = [file_stat(f) for f in files]
    known = cache.known_hashes(stats)
    out: list[Fingerprint | None] = [None] * len(files)
    todo = []
    for i, stat in enumerate(stats):
        if stat.path in known:
            out[i] = Fingerprint(known[stat.path])
        else:
            todo.append(i)
    bar.advance(len(files) - len(todo))

    def read(i: int) -> tuple[Fingerprint, FileStat]:
        """Stat again, then hash: the cache remembers the hash with the stat taken before it."""
        stat = fresh_stat(files[i], stats[i])
        try:
            return Fingerprint(hash_file(files[i].path)), stat
        except OSError as exc:
            return Fingerprint(None, f"cannot read file: {exc.strerror or exc}"), stats[i]

    # hashlib releases the GIL on large buffers, so threads overlap reading and hashing.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            stat_from = time.time_ns()
            results = list(pool.map(read, chunk))
            for i, (result, _) in zip(chunk, results, strict=True):
                out[i] = result
            cache.remember_hashes(
                ((stat, r.hash) for r, stat in results if r.hash is not None), stat_from)
            bar.advance(len(chunk))
    bar.close()
    return [fp for fp in out if fp is not None]


def fingerprint_groups(
    groups: Sequence[Group], cache: ContentCache, workers: int, progress: Progress,
) -> tuple[dict[str, list[Fingerprint]], dict[str, dict[str, float]]]:
    """Every group's fingerprints (file order) and, per group, its "hash" seconds."""
    seconds: dict[str, dict[str, float]] = {g.name: {} for g in groups}
    prints: dict[str, list[Fingerprint]] = {}
    progress.expect("hash", sum(len(g.files) for g in groups))  # whole totals: a true ETA
    for group in groups:
        t0 = time.perf_counter()
        prints[group.name] = fingerprint(group.files, cache, workers, progress)
        seconds[group.name]["hash"] = time.perf_counter() - t0
    return prints, seconds


def fresh_stat(image: ImageFile, scanned: FileStat) -> FileStat:
    """A local file's stat taken now, just before it is read; a URL (or a file that vanished:
    its read fails anyway) keeps what the scan saw, and so does a caller that knows no inode
    and ctime (the key must match what it will pass next time)."""
    if not isinstance(image.path, Path) or (image.ino, image.ctime_ns) == (0, 0):
        return scanned
    try:
        st = os.stat(image.path)
    except OSError:
        return scanned
    return scanned._replace(size=st.st_size, mtime_ns=st.st_mtime_ns, ino=st.st_ino,
                            ctime_ns=st.st_ctime_ns)
