"""Thumbnails: small JPEGs named by content hash, written once and reused by every later report.

OUTPUT/.report/thumbs is their cache; report.html carries the ones it shows inside itself, as
data URIs (data_uris), so the page needs no other file. That folder is reached, and its files
read and written, without following a symlink: a link put there never leads a report outside
OUTPUT, and never brings another file's bytes into the page.
"""

from __future__ import annotations

import base64
import errno
import io
import logging
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

from repsample.embedding.decode import DecodeError, decode_image, decode_workers
from repsample.errors import RepsampleError
from repsample.fsio import temporary_name
from repsample.output.files import naming
from repsample.output.layout import THUMBS
from repsample.progress import Progress, SilentProgress

logger = logging.getLogger(__name__)

THUMB_DIR = Path(THUMBS)
THUMB_SIDE = 128  # px, longest side: about as sharp as a 104 px tile needs; fits the size budget
THUMB_QUALITY = 75  # each is carried inside report.html: ~2 kB for a photograph, as base64


def data_uris(output_dir: Path, digests: set[str]) -> dict[str, str]:
    """The thumbnails of these hashes as data: URIs, for those that exist as files."""
    out: dict[str, str] = {}
    try:
        with _thumb_folder(output_dir, create=False) as folder:
            for digest in sorted(digests):
                data = _read(folder, f"{digest}.jpg")
                if data is not None:
                    out[digest] = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    except FileNotFoundError:  # no thumbnails at all
        pass
    return out


@contextmanager
def _thumb_folder(output_dir: Path, create: bool = True) -> Iterator[int]:
    """A descriptor of output_dir/.report/thumbs (made where missing when ``create``), each step
    taken without following a symlink."""
    fd = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, part in enumerate(THUMB_DIR.parts, start=1):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise  # FileNotFoundError: no such folder (create=False)
                raise RepsampleError(
                    f"OUTPUT's {'/'.join(THUMB_DIR.parts[:depth])} is a symlink or a file, not a "
                    "folder: repsample keeps its thumbnails there and follows no link out of OUTPUT; "
                    "remove it"
                ) from None
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _is_thumbnail(folder: int, name: str) -> bool:
    """Whether folder holds a thumbnail of that name; a symlink or anything else there is refused."""
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise RepsampleError(
            f"OUTPUT's {THUMB_DIR.as_posix()}/{name} is not a file repsample wrote (a symlink or a "
            "folder); repsample reads no thumbnail through a link: remove it"
        )
    return True


def _read(folder: int, name: str) -> bytes | None:
    """The bytes of a regular file in folder; None for anything else (never through a link)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    with open(fd, "rb") as fh:
        return fh.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


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
    with _thumb_folder(output_dir) as folder:
        if previous is not None:
            _link_previous(previous, folder, [h for h in sources if not _is_thumbnail(folder, f"{h}.jpg")])
        done = {h for h in sources if _is_thumbnail(folder, f"{h}.jpg")}
        todo = [h for h in sources if h not in done]
        failed = _make(folder, output_dir / THUMB_DIR, todo, sources, done, workers, progress)
    if failed:  # one line, not one per image: a moved INPUT can leave thousands without a source
        logger.warning("%d thumbnail(s) could not be made (sources moved or unreadable), e.g. %s",
                       len(failed), ", ".join(str(c) for c in sources[failed[0]]) or failed[0])
    return done


def _make(folder: int, shown: Path, todo: list[str], sources: Mapping[str, Sequence[Path | str]],
          done: set[str], workers: int | None, progress: Progress | None) -> list[str]:
    """Decode and write the thumbnails in todo into folder (shown: its path), adding each made to
    done; returns those that failed."""
    bar = (progress or SilentProgress()).stage("thumbs", len(todo))
    failed: list[str] = []
    # Threads suffice: PIL releases the GIL while it decodes and resizes.
    with ThreadPoolExecutor(max_workers=decode_workers(workers)) as pool:
        made = pool.map(lambda h: _write_one(folder, shown, h, sources[h]), todo)
        for digest, ok in zip(todo, made, strict=True):
            if ok:
                done.add(digest)
            else:
                failed.append(digest)
            bar.advance()
    bar.close()
    return failed


def _link_previous(previous: Path, folder: int, wanted: Sequence[str]) -> None:
    from repsample.output.publish import read_inventory

    owned = read_inventory(previous) or {}
    try:
        with _thumb_folder(previous, create=False) as before:
            for digest in wanted:
                name = f"{digest}.jpg"
                entry = owned.get(f"{THUMB_DIR.as_posix()}/{name}")
                try:
                    st = os.stat(name, dir_fd=before, follow_symlinks=False)
                    if entry is None or not entry.matches(st, previous / THUMB_DIR / name):
                        continue  # not provably ours (a user's file, or replaced since): make it anew
                    os.link(name, name, src_dir_fd=before, dst_dir_fd=folder, follow_symlinks=False)
                except OSError:  # gone, or a file system without hard links: decode it again
                    continue
    except (OSError, RepsampleError):  # the previous result's folder is not usable: decode again
        return


def _write_one(folder: int, shown: Path, digest: str, candidates: Sequence[Path | str]) -> bool:
    for source in candidates:
        try:
            image = decode_image(source, min_size=(THUMB_SIDE, THUMB_SIDE))
        except DecodeError as exc:
            logger.debug("no thumbnail from %s: %s", source, exc)
            continue
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        data = io.BytesIO()
        image.save(data, "JPEG", quality=THUMB_QUALITY, optimize=True)
        target = f"{digest}.jpg"
        tmp = temporary_name(target)
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)  # a leftover (or a link) is replaced, never written through
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder)
        with naming(shown / target), open(fd, "wb") as fh:
            fh.write(data.getbuffer())
        os.replace(tmp, target, src_dir_fd=folder, dst_dir_fd=folder)
        return True
    return False
