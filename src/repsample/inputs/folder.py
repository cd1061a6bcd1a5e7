"""Scan: find the groups (folders that directly hold images) under an input root."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from repsample import fsio
from repsample.errors import RepsampleError, mention

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
    outside_links: int = 0  # image symlinks leading outside INPUT, not followed (closed world)


def normalize_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """'.JPG', 'jpg' and '.jpg' all mean the same extension."""
    out = []
    for ext in extensions:
        ext = ext.strip().lower()
        if not ext or ext == ".":
            raise RepsampleError(f"empty extension in {list(extensions)!r}; use e.g. "
                                 f"{mention('extensions')} .jpg")
        out.append(ext if ext.startswith(".") else "." + ext)
    return tuple(dict.fromkeys(out))


def scan(
    root: Path | str,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    groups: Sequence[str] | None = None,
    *,
    follow_symlinks: bool = False,
    exclude: Sequence[Path] = (),
) -> list[Group]:
    """All groups under root (a folder or an fsspec URL), sorted by name, files sorted by path.

    INPUT is a closed world: a symlink (to a file or a folder) whose target lies outside root
    is not followed unless follow_symlinks; such files are counted in ``Group.outside_links``.
    Folders under ``exclude`` (OUTPUT and its staging folder) are never scanned, whatever links
    lead there. A folder is scanned once (same device and inode), so a symlink loop cannot hang
    the scan, and a folder inside root is named by its real, link-free path whichever way the
    walk reached it first (``cats/alias -> ../dogs`` is group ``dogs``). Only regular files
    are images: a FIFO or a device named like one is skipped.
    """
    exts = normalize_extensions(extensions)
    if fsio.is_url(root):
        return pick_groups(_scan_url(str(root), exts), groups, root, exts)
    root = Path(root).absolute()
    found, outside = _scan_folder(root, exts, _Confinement(root, follow_symlinks, exclude))
    if outside:
        count = sum(map(len, outside.values()))
        first = next(iter(outside.values()))[0]
        logger.warning("skipped %d symlink(s) that lead outside INPUT (first: %s); "
                       "pass --follow-symlinks to use them", count, first)
    picked = pick_groups(found, groups, root, exts)
    return [dataclasses.replace(g, outside_links=len(outside.get(g.name, ()))) for g in picked]


def _scan_folder(root: Path, exts: tuple[str, ...], inside: _Confinement,
                 ) -> tuple[dict[str, list[ImageFile]], dict[str, list[str]]]:
    """(group -> its images, group -> its symlinks leading outside) of a local folder."""
    found: dict[str, list[ImageFile]] = {}
    outside: dict[str, list[str]] = {}
    special: list[Path] = []
    seen_dirs: set[tuple[int, int]] = set()

    def on_error(err: OSError) -> None:
        logger.warning("cannot list %s: %s", err.filename, err.strerror)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if inside.allows(Path(dirpath, d)))
        group, folder = inside.place(Path(dirpath))
        files = []
        for name in sorted(n for n in filenames if n.lower().endswith(exts)):
            rel = name if group == "." else f"{group}/{name}"
            if Path(dirpath, name).is_symlink() and not inside.allows(Path(dirpath, name)):
                outside.setdefault(group, []).append(rel)
            elif image := _image(folder / name, rel, group, special):
                files.append(image)
        if files:
            found[group] = files
    if special:
        logger.warning("skipped %d file(s) that are not regular files (first: %s)",
                       len(special), special[0])
    return found, outside


def _image(path: Path, rel: str, group: str, special: list[Path]) -> ImageFile | None:
    """The file at path as a candidate image; None for a dangling symlink, and for what is not
    a regular file (added to special): a FIFO would block its reader, a device never ends."""
    try:
        st = path.stat()
    except OSError as exc:  # a dangling symlink: not an image we can consider
        logger.warning("skipping %s: %s", path, exc.strerror)
        return None
    if not stat.S_ISREG(st.st_mode):
        special.append(path)
        return None
    return ImageFile(path, rel, group, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class _Confinement:
    """Which paths the scan may enter: inside INPUT's real path (or anywhere when following
    symlinks), never inside an excluded folder."""

    def __init__(self, root: Path, follow_symlinks: bool, exclude: Sequence[Path]) -> None:
        self.given = root
        self.root = os.path.realpath(root)
        self.follow = follow_symlinks
        self.exclude = [os.path.realpath(p) for p in exclude]

    def place(self, folder: Path) -> tuple[str, Path]:
        """The group a folder the walk reached is, and the path its files are read by: inside
        INPUT, its real path relative to INPUT (a folder linked to is named once, the same way
        whichever link the walk took first); outside it (followed links), the path walked."""
        real = os.path.realpath(folder)
        if within(real, self.root):
            rel = Path(os.path.relpath(real, self.root)).as_posix()
            return rel, self.given / rel if rel != "." else self.given
        return folder.relative_to(self.given).as_posix(), folder

    def allows(self, path: Path) -> bool:
        if not path.is_symlink():
            return not self.exclude or self._allowed(os.path.realpath(path))
        real = os.path.realpath(path)
        return (self.follow or within(real, self.root)) and self._allowed(real)

    def _allowed(self, real: str) -> bool:
        return not any(within(real, e) for e in self.exclude)


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _scan_url(root: str, exts: tuple[str, ...]) -> dict[str, list[ImageFile]]:
    found: dict[str, list[ImageFile]] = {}
    for url, rel, size, stamp in fsio.list_images(root, exts):
        group = rel.rsplit("/", 1)[0] if "/" in rel else "."
        found.setdefault(group, []).append(ImageFile(url, rel, group, size, stamp))
    return found


def pick_groups(
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
            f"point INPUT at the dataset folder or change {mention('extensions')}"
        )
    return [Group(name, tuple(files)) for name, files in sorted(found.items())]
