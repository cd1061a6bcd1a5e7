"""Storage: fsspec URLs (s3://, gs://, memory://, ...) beside plain local paths.

A location is a ``Path`` (local, the default and fast path: nothing here touches it) or a ``str``
holding a URL. ``file://`` URLs become local paths, so hardlinks and the stat fast path still work.
Remote files are read whole (one GET per image), which is what object stores are good at.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import logging
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from repsample.errors import RepsampleError, UsageError, mention

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from fsspec import AbstractFileSystem

logger = logging.getLogger(__name__)

Location = Path | str  # a str is always a URL
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# The extra that brings each protocol's fsspec implementation.
_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
MAX_FILE_BYTES = 2 * 2**30
"""The most repsample reads of one local image or listing file: 2 GiB, far above any image
Pillow would decode (its pixel limit), far below what would exhaust a machine's memory."""
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_READ_CHUNK = 1 << 20
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def is_url(location: object) -> bool:
    return isinstance(location, str) and _URL.match(location) is not None


def as_location(value: str | Path) -> Location:
    """A CLI or API argument as a location: URLs stay strings, file:// and plain paths become Paths."""
    text = str(value)
    if not _URL.match(text):
        return Path(value)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return text.rstrip("/")


def display(location: Location) -> str:
    """How a location is recorded in run.json: URLs verbatim, local paths absolute."""
    return location if isinstance(location, str) else str(Path(location).resolve())


def url_fs(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec file system of a URL and the path inside it; a missing driver is a one-line error."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        if protocol in _EXTRAS:
            package, extra = _EXTRAS[protocol]
            raise RepsampleError(f"{package} is not installed; "
                                 f"run: pip install 'repsample[{extra}]'") from None
        # No extra of ours carries this driver: fsspec's own message names what to install.
        raise RepsampleError(f"cannot read {protocol}:// URLs: {exc} (pip install what it names)") from None
    except ValueError as exc:  # unknown protocol
        raise RepsampleError(f"cannot open {url}: {exc}") from None
    return fs, str(path)


def read_bytes(location: str | Path) -> bytes:
    """The whole file; FileNotFoundError and other OSErrors pass through as for open(), and a
    local file that is not a regular one, or is over MAX_FILE_BYTES, is an OSError too."""
    if is_url(location):
        fs, path = url_fs(str(location))
        return bytes(fs.cat_file(path))
    with open_binary(location) as fh:
        return fh.read()


def readable(location: str | Path | IO[bytes]) -> str | Path | IO[bytes]:
    """What PIL's Image.open can read: file objects as they are, URLs as bytes, local paths as
    they are once they prove to be regular files (PIL would wait on a FIFO, or read a device)."""
    if is_url(location):
        return io.BytesIO(read_bytes(str(location)))
    if isinstance(location, str | Path):
        check_regular(os.stat(location), location)
    return location


def open_binary(location: str | Path) -> IO[bytes]:
    """A binary file object to read in chunks (for hashing); a local one only if it is a regular
    file, read to at most MAX_FILE_BYTES."""
    if is_url(location):
        fs, path = url_fs(str(location))
        return fs.open(path, "rb")  # type: ignore[no-any-return]
    # O_NONBLOCK: a FIFO is opened to be looked at, not waited on (for a regular file it is moot).
    fd = os.open(location, os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_BINARY", 0))
    try:
        check_regular(os.fstat(fd), location)
        return io.BufferedReader(_CappedFile(fd, "rb"))
    except BaseException:
        os.close(fd)
        raise


def hash_file(location: str | Path) -> str:
    """SHA-256 of the file's bytes, hex; read as open_binary reads."""
    digest = hashlib.sha256()
    with open_binary(location) as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_regular(info: os.stat_result, location: str | Path) -> None:
    """Only regular files are read as images or listings: a FIFO would block the read until
    killed, a device (/dev/zero) never ends; and none over MAX_FILE_BYTES."""
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
        raise NotRegularFile(errno.EINVAL, f"not a regular file ({kind}); only regular files are read",
                             str(location))
    if info.st_size > MAX_FILE_BYTES:
        raise _too_large(location)


class NotRegularFile(OSError):
    """A local path that is not a regular file, or one too large to read."""


def _too_large(location: str | Path) -> NotRegularFile:
    return NotRegularFile(errno.EFBIG, f"larger than {MAX_FILE_BYTES // 2**30} GiB, the most "
                          "repsample reads of one file", str(location))


class _CappedFile(io.FileIO):
    """A file that refuses to be read past MAX_FILE_BYTES: its size was checked when it was
    opened, but a file can grow while it is read, and some (/proc's) report no size at all."""

    _count = 0

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        count = super().readinto(buffer)
        self._count += count or 0
        if self._count > MAX_FILE_BYTES:
            raise _too_large(self.name)
        return count

    def readall(self) -> bytes:  # FileIO's own reads past readinto
        out = bytearray()
        chunk = bytearray(_READ_CHUNK)
        while count := self.readinto(chunk):
            out += memoryview(chunk)[:count]
        return bytes(out)


def temporary_name(name: str) -> str:
    """Where an atomic write puts ``name`` before renaming it into place (a name OUTPUT keeps)."""
    return f".{name}.repsample-tmp"


def download(url: str, dest: Path) -> None:
    fs, path = url_fs(url)
    fs.get_file(path, str(dest))


def join(url: str, rel: str) -> str:
    return f"{url.rstrip('/')}/{rel}"


# -- listing -------------------------------------------------------------------------------------

def list_images(root: str, extensions: Sequence[str]) -> list[tuple[str, str, int, int]]:
    """(url, path relative to root, size, mtime_ns) of every file under root with an extension."""
    fs, base = url_fs(root)
    if not fs.isdir(base):
        raise RepsampleError(f"INPUT {root} is not a folder (or does not exist); point it at the dataset")
    base = base.rstrip("/")
    out = []
    for path, info in sorted(fs.find(base, detail=True).items()):
        if info.get("type", "file") != "file" or not path.lower().endswith(tuple(extensions)):
            continue
        rel = path[len(base):].lstrip("/")
        out.append((join(root, rel), rel, int(info.get("size") or 0), version_stamp(info)))
    return out


def version_stamp(info: dict[str, Any]) -> int:
    """A stand-in for mtime_ns from whatever the store reports, so the files fast path works.

    Stores name it differently (local mtime, S3 LastModified, GCS updated, memory created);
    where there is no time but an ETag, the ETag's digest serves: it changes with the content.
    """
    for key in ("mtime", "LastModified", "updated", "last_modified", "modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return int(value * 1e9)
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, str):
            try:
                return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                pass
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return int(hashlib.sha256(str(etag).encode()).hexdigest()[:15], 16)
    return -1


# -- checks and outputs --------------------------------------------------------------------------

def check_url_paths(src: Location, output_url: str | None, mode: str) -> None:
    """What cannot work with URLs is refused before anything runs."""
    if is_url(src) and mode in ("hardlink", "symlink"):
        raise UsageError(f"{mode} needs INPUT on the local disk; {src} is a URL: choose copy or none",
                         option="mode")
    if output_url is not None and is_url(src) and output_url.startswith(str(src) + "/"):
        raise RepsampleError(f"OUTPUT {output_url} is inside INPUT {src}; choose a folder outside it")


def check_output_url(url: str, overwrite: bool) -> None:
    fs, path = url_fs(url)
    if fs.isfile(path):
        raise RepsampleError(f"OUTPUT {url} is a file; choose a folder")
    if fs.isdir(path) and fs.ls(path) and not overwrite:
        raise RepsampleError(
            f"OUTPUT {url} is not empty; pass {mention('overwrite')} to replace an earlier selection "
            "or choose an empty folder"
        )


def upload_tree(local_dir: Path, url: str, skip: str | None = None) -> int:
    """Copy every file under local_dir (but the top-level folder ``skip``) to the same relative
    path under url; returns the count."""
    fs, base = url_fs(url)
    count = 0
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(local_dir).as_posix()
        if skip is not None and rel.split("/", 1)[0] == skip:
            continue
        target = f"{base.rstrip('/')}/{rel}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)
        count += 1
    return count
