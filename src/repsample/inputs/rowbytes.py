"""Images held as bytes in a table (a Parquet column, a Hugging Face dataset) served as fsspec
URLs, ``repsample-rows://<source>/<group>/<name>``, so that hashing, decoding, the duplicate
check and export read them as they read any URL (repsample.fsio), one row at a time, without a
copy of the dataset in memory or on disk.

A source is served for the life of the process (a later source of the same token replaces it):
its rows are read lazily from the table, which stays memory-mapped where Arrow maps it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from typing import IO, Any

PROTOCOL = "repsample-rows"
STAMP_MASK = 2**62 - 1

_sources: dict[str, Callable[[str], bytes]] = {}
_lock = threading.Lock()

# First bytes of the formats PIL reads most often: the extension a bytes row's name gets.
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"),
          (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def token(*parts: object) -> str:
    """A short stable name for a source, from what identifies it (its location, its columns)."""
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:16]


def stamp(*parts: object) -> int:
    """A number that changes with what identifies a source (a listing's stat, a dataset's
    fingerprint): a bytes row's stand-in for a file's mtime. Below 2**62, as SQLite, which holds
    signed 64-bit integers, must store it (a 64-bit digest is at or above 2**63 half the time)."""
    return int(token(*parts), 16) & STAMP_MASK


def serve(source: str, read: Callable[[str], bytes]) -> None:
    """Serve ``read(rel)`` at ``repsample-rows://<source>/<rel>`` in this process."""
    import fsspec

    with _lock:
        if not _sources:
            fsspec.register_implementation(PROTOCOL, _filesystem(), clobber=True)
        _sources[source] = read


def url(source: str, rel: str) -> str:
    return f"{PROTOCOL}://{source}/{rel}"


def extension(data: bytes, hint: str | None = None) -> str:
    """A bytes row's file extension: from the file name it came with, else from its first bytes."""
    if hint and "." in hint.rsplit("/", 1)[-1]:
        return "." + hint.rsplit(".", 1)[-1].lower()
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".bin")


def read_row(path: str) -> bytes:
    """The bytes at a URL path (protocol stripped): ``<source>/<rel>``."""
    source, _, rel = path.partition("/")
    with _lock:
        read = _sources.get(source)
    if read is None:
        raise FileNotFoundError(2, "no such image source in this process", path)
    try:
        return read(rel)
    except KeyError:
        raise FileNotFoundError(2, "no such row", path) from None


def _filesystem() -> type:
    """The fsspec class (made when first needed: importing fsspec is not free)."""
    from fsspec.spec import AbstractFileSystem

    class RowBytesFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
        """Read-only: every path is one row's image bytes."""

        protocol = PROTOCOL

        def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[bytes]:
            if mode != "rb":
                raise PermissionError(f"{PROTOCOL}:// is read-only")
            return io.BytesIO(read_row(self._strip_protocol(path)))

        def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                     **kwargs: Any) -> bytes:
            return read_row(self._strip_protocol(path))[start:end]

        def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            path = self._strip_protocol(path)
            return {"name": path, "size": len(read_row(path)), "type": "file"}

        def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None,
                     **kwargs: Any) -> None:
            data = read_row(self._strip_protocol(rpath))
            with open(lpath, "wb") as fh:
                fh.write(data)

    return RowBytesFileSystem
