"""Scan: find the groups (folders that directly hold images) under an input root."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from repsample import fsio
from repsample.errors import RepsampleError

logger = logging.getLogger(__name__)

DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageFile:
    """One candidate image: where it is, which group it belongs to, and its stat for the cache."""

    path: Path | str  # absolute; a str is an fsspec URL (repsample.fsio)
    rel: str  # relative to the input root, POSIX separators
    group: str
    size: int
    mtime_ns: int
    ino: int = 0  # with ctime, tells a file rewritten in place (same size and mtime) from the old one
    ctime_ns: int = 0


@dataclass(frozen=True)
class Group:
    """A folder that directly holds images, named by its path relative to the input root."""

    name: str
    files: tuple[ImageFile, ...]


def normalize_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """'.JPG', 'jpg' and '.jpg' all mean the same extension."""
    out = []
    for ext in extensions:
        ext = ext.strip().lower()
        if not ext or ext == ".":
            raise RepsampleError(f"empty extension in {list(extensions)!r}; use e.g. --extensions .jpg")
        out.append(ext if ext.startswith(".") else "." + ext)
    return tuple(dict.fromkeys(out))


def scan(
    root: Path | str, extensions: Sequence[str] = DEFAULT_EXTENSIONS, groups: Sequence[str] | None = None
) -> list[Group]:
    """All groups under root (a folder or an fsspec URL), sorted by name, files sorted by path.

    Symlinked folders are followed once: a folder already visited (same device and inode)
    is skipped, so a symlink loop cannot hang the scan.
    """
    exts = normalize_extensions(extensions)
    if fsio.is_url(root):
        return _pick_groups(_scan_url(str(root), exts), groups, root, exts)
    root = Path(root).absolute()
    found: dict[str, list[ImageFile]] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def on_error(err: OSError) -> None:
        logger.warning("cannot list %s: %s", err.filename, err.strerror)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        files = []
        for name in sorted(filenames):
            if not name.lower().endswith(exts):
                continue
            path = Path(dirpath, name)
            try:
                fst = path.stat()
            except OSError as exc:  # a dangling symlink: not an image we can consider
                logger.warning("skipping %s: %s", path, exc.strerror)
                continue
            if not path.is_file():
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            files.append(ImageFile(path, rel, rel_dir, fst.st_size, fst.st_mtime_ns, fst.st_ino, fst.st_ctime_ns))
        if files:
            found[rel_dir] = files
    return _pick_groups(found, groups, root, exts)


def _scan_url(root: str, exts: tuple[str, ...]) -> dict[str, list[ImageFile]]:
    found: dict[str, list[ImageFile]] = {}
    for url, rel, size, stamp in fsio.list_images(root, exts):
        group = rel.rsplit("/", 1)[0] if "/" in rel else "."
        found.setdefault(group, []).append(ImageFile(url, rel, group, size, stamp))
    return found


def _pick_groups(
    found: dict[str, list[ImageFile]], groups: Sequence[str] | None, root: Path | str,
    exts: tuple[str, ...],
) -> list[Group]:
    if groups is not None:
        wanted = [g.strip("/") or "." for g in groups]
        missing = [g for g in wanted if g not in found]
        if missing:
            raise RepsampleError(
                f"no images in group(s) {', '.join(map(repr, missing))} under {root}; "
                f"groups found: {', '.join(sorted(found)) or 'none'}"
            )
        found = {g: found[g] for g in wanted}
    if not found:
        raise RepsampleError(
            f"no images found under {root} (extensions: {' '.join(exts)}); "
            "point INPUT at the dataset folder or change --extensions"
        )
    return [Group(name, tuple(files)) for name, files in sorted(found.items())]
