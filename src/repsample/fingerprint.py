"""Fingerprint: the content hash of every file, read only when its (path, size, mtime) is new."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from repsample.cache import EmbeddingCache, hash_file, path_key
from repsample.progress import Progress, SilentProgress
from repsample.scan import ImageFile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    """A file's content hash, or why it could not be read."""

    hash: str | None
    error: str | None = None


def fingerprint(
    files: Sequence[ImageFile],
    cache: EmbeddingCache,
    workers: int = 2,
    progress: Progress | None = None,
) -> list[Fingerprint]:
    """One Fingerprint per file, in order. Unreadable files become errors, not exceptions."""
    bar = (progress or SilentProgress()).stage("hash", len(files))
    keys = [path_key(f.path) for f in files]
    known = cache.known_hashes([(k, f.size, f.mtime_ns) for k, f in zip(keys, files, strict=True)])
    out: list[Fingerprint | None] = [None] * len(files)
    todo = []
    for i, key in enumerate(keys):
        if key in known:
            out[i] = Fingerprint(known[key])
        else:
            todo.append(i)
    bar.advance(len(files) - len(todo))

    def read(i: int) -> Fingerprint:
        try:
            return Fingerprint(hash_file(files[i].path))
        except OSError as exc:
            return Fingerprint(None, f"cannot read file: {exc.strerror or exc}")

    # hashlib releases the GIL on large buffers, so threads overlap reading and hashing.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            results = list(pool.map(read, chunk))
            for i, result in zip(chunk, results, strict=True):
                out[i] = result
            cache.remember_hashes(
                (keys[i], files[i].size, files[i].mtime_ns, r.hash)
                for i, r in zip(chunk, results, strict=True)
                if r.hash is not None
            )
            bar.advance(len(chunk))
    bar.close()
    return [fp for fp in out if fp is not None]
