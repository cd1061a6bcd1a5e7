"""The cache (``--cache``): an SQLite database (WAL) of what was computed from file contents,
keyed by those contents: file hashes, embeddings (with the model's identity), stored results.

``file_hashes`` maps a file's (path, size, mtime, inode, ctime) to its content hash so an
unchanged file is never re-read; ``embeddings`` maps (content hash, model key) to a vector, or to
the decode error the content gave, so a renamed or copied file, or a second dataset sharing
images, costs nothing. Every batch is committed as it lands: a killed run loses at most the batch
in flight. ``clusterings`` (named for its first use) keeps results computed from vectors: each
group's chosen clustering, its duplicate pairs, its image scores (npz files, CRC-checked by zip),
under a ``content_key`` naming the contents and the settings, so a rerun on unchanged data skips
that work too (``remember``); an entry that fails to decode is computed again.

A damaged file can make the cache forget, never answer wrong: file hashes and vectors carry a
CRC-32 of their key and value. Every sqlite3 error stops at this module's boundary (``_guarded``)
as one line naming the cache and ``--cache``: a damaged database (not SQLite, or malformed pages)
is set aside beside itself as ``<name>.damaged-<time>``; at open a fresh cache takes its place,
later in a run the run stops and the next one starts fresh. ``PRAGMA quick_check`` is not run at
open: it reads the whole file (0.6 s cold for 20,000 vectors, growing with the cache), while the
checksums guard every row actually read.

Only a file that proves to be repsample's is ever written, repaired or set aside: SQLite's header
with repsample's ``application_id`` (caches made before it: repsample's tables), or an empty file.
Any other existing file (a listing, an image, another program's database) is refused as it is
(``foreign``). A cache opened ``read_only`` (report, evaluate: the path may come from run.json,
which a user can edit) is opened with SQLite's ``mode=ro``: never created, repaired or set aside.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import sqlite3
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Concatenate, NamedTuple, ParamSpec, TypeVar

import numpy as np
import platformdirs

from repsample import fsio
from repsample.errors import EnvironmentProblem, RepsampleError, mention, os_problem

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_P = ParamSpec("_P")
SCHEMA_VERSION = 2  # 2: file_hashes (inode, ctime, checksum) replaces files; vectors checksummed
APPLICATION_ID = 0x52535043  # "RSPC" in SQLite's header (PRAGMA application_id): a repsample cache
_SQLITE_MAGIC = b"SQLite format 3\x00"
_LEGACY_TABLES = {"embeddings", "meta"}  # what every cache made before APPLICATION_ID holds
_CHUNK = 1 << 20
RACY_NS = 2_000_000_000
"""A file whose ctime is this close to the moment it was stat'ed may change again within the
same timestamp tick unseen (git's "racily clean" entries): its hash is not remembered."""

# SQLite's primary result codes (sqlite3 exposes them as attributes from Python 3.11 on).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 26)
_DAMAGED = {_CORRUPT, _NOTADB}
_BY_MESSAGE = (("malformed", _CORRUPT), ("not a database", _NOTADB), ("disk is full", _FULL),
               ("readonly", _READONLY), ("unable to open", _CANTOPEN), ("disk i/o", _IOERR),
               ("locked", _BUSY))
_OTHER_CACHE = f"pass {mention('cache')} PATH"  # a flag on the command line
_HINTS = {
    _FULL: f"free some space, or {_OTHER_CACHE} on another disk",
    _READONLY: f"make it writable, or {_OTHER_CACHE} to a file you can write",
    _PERM: f"make it writable, or {_OTHER_CACHE} to a file you can write",
    _CANTOPEN: f"check the folder exists and is writable, or {_OTHER_CACHE}",
    _IOERR: f"check the disk, or {_OTHER_CACHE} on another one",
    _BUSY: f"another process holds it; wait for it, or {_OTHER_CACHE}",
    _LOCKED: f"another process holds it; wait for it, or {_OTHER_CACHE}",
    _CORRUPT: f"it is damaged; a `repsample select` with it sets it aside, or {_OTHER_CACHE}",
    _NOTADB: f"it is damaged; a `repsample select` with it sets it aside, or {_OTHER_CACHE}",
}


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("repsample")) / "embeddings.sqlite"


def content_key(settings: str = "", rows: Iterable[str] = (), files: Iterable[Path] = ()) -> str:
    """The key of a stored result: SHA-256 (hex) of what decides it. settings: a version and
    every parameter, as one string; rows: the contents it was computed from (content hashes, a
    line each, in order); files: the bytes of files read whole (vectors from a file)."""
    digest = hashlib.sha256(settings.encode())
    for row in rows:
        digest.update(row.encode() + b"\n")
    for path in files:
        with open(path, "rb") as fh:  # not fsio.open_binary: a vectors file may pass its cap
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class FileStat(NamedTuple):
    """What the fast path compares: a file is unchanged while all of these are."""

    path: str  # path_key()
    size: int
    mtime_ns: int
    ino: int  # 0 for a URL
    ctime_ns: int  # 0 for a URL; unlike mtime, no one can set it back


@dataclass(frozen=True)
class Entry:
    """What the cache knows of one content under one model: a vector or an error."""

    vector: np.ndarray | None
    error: str | None


def _guarded(
    method: Callable[Concatenate[ContentCache, _P], _T],
) -> Callable[Concatenate[ContentCache, _P], _T]:
    """The cache's boundary: any sqlite3 error leaves it as one EnvironmentProblem line."""

    @functools.wraps(method)
    def guarded(self: ContentCache, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            if _code(exc) not in _DAMAGED or self.read_only:
                raise EnvironmentProblem(_explain(self.path, exc)) from None
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            raise EnvironmentProblem(
                f"{_set_aside(self.path, exc)}; rerun to start a fresh cache, or {_OTHER_CACHE}"
            ) from None

    return guarded


class ContentCache:
    """A connection to the cache database, a store keyed by content (file hashes, embeddings,
    clusterings, duplicate pairs, image scores); one per process (SQLite handles the locking).

    read_only: open an existing cache with SQLite's mode=ro, for readers of a path a record
    names (report, evaluate): nothing is created, repaired or set aside."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        problem = foreign(self.path)
        if problem is not None:
            raise RepsampleError(f"embedding cache {self.path} {problem}; it is left as it is "
                                 f"(move it away if it was a damaged cache): {_OTHER_CACHE} "
                                 "naming a new file or a repsample cache")
        if not read_only:
            self._make_folder()
        try:
            self._db = _connect(self.path, read_only)
        except sqlite3.Error as exc:
            if _code(exc) not in _DAMAGED or read_only:
                raise EnvironmentProblem(_explain(self.path, exc)) from None
            logger.warning("%s; starting a fresh cache", _set_aside(self.path, exc))
            try:
                self._db = _connect(self.path, read_only)
            except sqlite3.Error as again:
                raise EnvironmentProblem(_explain(self.path, again)) from None

    def _make_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_problem(exc, f"embedding cache {self.path}",
                             f"{_OTHER_CACHE} to a folder you can write") from None

    @_guarded
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ContentCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- file_hashes: the (path, size, mtime, inode, ctime) fast path -------------------------

    @_guarded
    def known_hashes(self, stats: Sequence[FileStat]) -> dict[str, str]:
        """Hashes of the files whose stat is unchanged since they were hashed."""
        out: dict[str, str] = {}
        damaged = 0
        for chunk in _chunks(stats, 500):
            by_path = {s.path: _storable(s) for s in chunk}
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, ino, ctime_ns, hash, crc FROM file_hashes "
                f"WHERE path IN ({marks})",
                [s.path for s in chunk],
            )
            for *fields, digest, crc in rows:
                stat = FileStat(*fields)
                if crc != _file_crc(stat, digest):
                    damaged += 1  # only a lost shortcut: the file is hashed again
                elif by_path.get(stat.path) == stat:
                    out[stat.path] = digest
        if damaged:
            logger.warning("embedding cache %s: %d stored file hashes failed their checksum "
                           "(damaged file); hashing those files again", self.path, damaged)
        return out

    @_guarded
    def remember_hashes(self, rows: Iterable[tuple[FileStat, str]], stat_from_ns: int) -> None:
        """Remember (stat, hash) pairs whose stats were taken at or after stat_from_ns (wall
        clock) and before the content was read; a file changed too recently is left out."""
        stored = [(_storable(stat), digest) for stat, digest in rows
                  if stat.ctime_ns < stat_from_ns - RACY_NS]
        trusted = [(*stat, digest, _file_crc(stat, digest)) for stat, digest in stored]
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?, ?)", trusted)

    # -- embeddings ---------------------------------------------------------------------------

    @_guarded
    def get_many(self, hashes: Sequence[str], model: str) -> dict[str, Entry]:
        """The stored entries of these contents; a vector that fails its checksum is removed
        and the run stops (EnvironmentProblem): the next run computes it again."""
        out: dict[str, Entry] = {}
        damaged: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(hashes)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT hash, dim, vector, error FROM embeddings "
                f"WHERE model = ? AND hash IN ({marks})",
                [model, *chunk],
            )
            for digest, dim, blob, error in rows:
                if blob is None:
                    out[digest] = Entry(None, error)
                elif (vector := _vector(digest, model, dim, blob)) is not None:
                    out[digest] = Entry(vector, error)
                else:
                    damaged.append(digest)
        if damaged and self.read_only:
            raise EnvironmentProblem(
                f"embedding cache {self.path}: {len(damaged)} stored vectors failed their checksum "
                "(the file is damaged); a `repsample select` with it computes them again, or "
                f"{_OTHER_CACHE}")
        if damaged:
            with self._transaction():
                self._db.executemany("DELETE FROM embeddings WHERE hash = ? AND model = ?",
                                     [(h, model) for h in damaged])
            raise EnvironmentProblem(
                f"embedding cache {self.path}: {len(damaged)} stored vectors failed their checksum "
                "(the file is damaged) and were removed; rerun to compute them again, or "
                f"{_OTHER_CACHE}")
        return out

    @_guarded
    def stored(self, hashes: Sequence[str], model: str) -> set[str]:
        """The hashes that have a vector or an error under model, without reading the vectors."""
        out: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(hashes)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT hash FROM embeddings WHERE model = ? AND hash IN ({marks})", [model, *chunk]
            )
            out.update(digest for (digest,) in rows)
        return out

    @_guarded
    def put_many(
        self,
        model: str,
        vectors: Iterable[tuple[str, np.ndarray]] = (),
        errors: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Store one batch in one transaction. A content already stored is kept (first wins)."""
        vec_rows: list[tuple[object, ...]] = [
            (h, model, int(v.shape[0]), _vector_blob(h, model, v), None) for h, v in vectors
        ]
        err_rows: list[tuple[object, ...]] = [(h, model, None, None, e) for h, e in errors]
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?, ?, ?)", vec_rows + err_rows
            )

    # -- stored results (clusterings, duplicate pairs, image scores): blobs under content_key --

    @_guarded
    def get_blob(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM clusterings WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    @_guarded
    def put_blob(self, key: str, value: bytes) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO clusterings VALUES (?, ?)", (key, value))

    @_guarded
    def recall(self, key: str, decode: Callable[[bytes], _T | None], what: str,
               again: str = "computing it again") -> _T | None:
        """The result stored under key, decoded; None when there is none, or when decode raises
        or gives None: a damaged entry is only a lost shortcut, warned of as "stored {what}
        unreadable; {again}", and the caller computes it again."""
        stored = self.get_blob(key)
        if stored is None:
            return None
        try:
            value = decode(stored)
        except Exception:  # numpy and zipfile raise many types on damaged bytes
            value = None
        if value is None:
            logger.warning("stored %s unreadable; %s", what, again)
        return value

    @_guarded
    def remember(self, key: str, compute: Callable[[], _T], encode: Callable[[_T], bytes],
                 decode: Callable[[bytes], _T | None], what: str,
                 again: str = "computing it again") -> _T:
        """The result stored under key (recall), or compute's, stored under key for the next run."""
        value = self.recall(key, decode, what, again)
        if value is None:
            value = compute()
            self.put_blob(key, encode(value))
        return value

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error; immediate so writers queue, not fail."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:  # e.g. a full disk: leave no transaction open behind the error
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may have rolled back already (disk full, I/O)
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


def _connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """Open (or create) the database and its tables; closed again if any of it fails."""
    if read_only:
        return _connect_read_only(path)
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            # The first write, before WAL: from here on the file says whose it is (foreign()).
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS file_hashes (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                ino INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, hash TEXT NOT NULL,
                crc INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS embeddings (
                hash TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER, vector BLOB, error TEXT,
                PRIMARY KEY (hash, model)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS clusterings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
            """
        )
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            # Schema 1's fast path knew no inode or ctime; it was only a shortcut, so it goes.
            db.execute("DROP TABLE IF EXISTS files")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
        return db
    except BaseException:
        db.close()
        raise


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing cache with mode=ro; its first page is read now, so damage shows here."""
    db = sqlite3.connect(_uri(path, "mode=ro"), uri=True, timeout=60, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except BaseException:
        db.close()
        raise


def _uri(path: Path, query: str) -> str:
    """An SQLite file: URI for path (any name: '?', '#' and '%' are escaped)."""
    return f"file:{urllib.parse.quote(os.fsencode(path.absolute()))}?{query}"


def foreign(path: Path) -> str | None:
    """Why the file at path is not a repsample cache (worded to follow the path), or None when
    it is one, is empty (nothing to lose) or does not exist. Only the file's first 100 bytes
    are read (and, for a cache made before APPLICATION_ID, its table names, immutably)."""
    try:
        info = path.stat()
        if S_ISDIR(info.st_mode):
            return None  # SQLite cannot open it: an EnvironmentProblem naming --cache
        if not S_ISREG(info.st_mode):
            return "is not a regular file"
        if info.st_size == 0:
            return None
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError:
        return None  # not there, or unreadable: SQLite's own error says which
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "is not an SQLite database, so not a repsample cache"
    owner = int.from_bytes(header[68:72], "big")
    if owner == APPLICATION_ID:
        return None
    if owner != 0:
        return f"is another program's SQLite database (application_id {owner})"
    return None if _legacy_tables(path) >= _LEGACY_TABLES else \
        "is an SQLite database without repsample's tables, so not a repsample cache"


def _legacy_tables(path: Path) -> set[str]:
    """The table names of an SQLite file without an application_id, read without writing
    anything (immutable: no lock, no -wal or -shm file made); empty when unreadable."""
    try:
        db = sqlite3.connect(_uri(path, "mode=ro&immutable=1"), uri=True)
    except sqlite3.Error:
        return set()
    try:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return set()
    finally:
        db.close()


def _code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code for exc (from its message before Python 3.11)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    return next((c for needle, c in _BY_MESSAGE if needle in text), 1)


def _explain(path: Path, exc: sqlite3.Error) -> str:
    hint = _HINTS.get(_code(exc), f"{_OTHER_CACHE} to use another file")
    return f"embedding cache {path}: {exc}; {hint}"


def _set_aside(path: Path, exc: sqlite3.Error) -> str:
    """Rename a damaged database (and its WAL and shared-memory files) beside itself, so that a
    fresh one can take its path and the old one can still be looked at. Returns what was done."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{path}{suffix}")
            if suffix == "" or src.exists():
                os.replace(src, f"{aside}{suffix}")
    except OSError as err:
        raise EnvironmentProblem(
            f"embedding cache {path} is damaged ({exc}) and cannot be set aside "
            f"({err.strerror}); move it away, or {_OTHER_CACHE}") from None
    return f"embedding cache {path} was damaged ({exc}) and was set aside as {aside}"


def _vector_blob(digest: str, model: str, vector: np.ndarray) -> bytes:
    """The vector's float32 bytes, then a CRC-32 of key and bytes (readers before schema 2
    read only dim floats, so they still can)."""
    data = np.ascontiguousarray(vector, np.float32).tobytes()
    return data + _vector_crc(digest, model, data).to_bytes(4, "little")


def _vector(digest: str, model: str, dim: object, blob: bytes) -> np.ndarray | None:
    """The stored vector, or None when the row is damaged."""
    if not isinstance(dim, int) or dim <= 0:
        return None
    size = 4 * dim
    if len(blob) == size + 4:
        if _vector_crc(digest, model, blob[:size]) != int.from_bytes(blob[size:], "little"):
            return None
    elif len(blob) != size:  # exactly size: written before checksums (schema 1), taken on trust
        return None
    return np.frombuffer(blob, np.float32, count=dim)


def _vector_crc(digest: str, model: str, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(f"{digest}\0{model}\0".encode()))


def _storable(stat: FileStat) -> FileStat:
    """stat's numbers as SQLite holds integers, signed 64-bit: an mtime set past the year 2262,
    or an inode number of 2**63 or more, wraps as in two's complement (a bytes row's stamp,
    rowbytes.stamp, is below 2**62 already)."""
    def wrap(value: int) -> int:
        return (value + 2**63) % 2**64 - 2**63

    return stat._replace(size=wrap(stat.size), mtime_ns=wrap(stat.mtime_ns), ino=wrap(stat.ino),
                         ctime_ns=wrap(stat.ctime_ns))


def _file_crc(stat: FileStat, digest: object) -> int:
    return zlib.crc32("\0".join(map(str, (*stat, digest))).encode("utf-8", "surrogatepass"))


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def path_key(path: str | Path) -> str:
    """Paths are stored resolved, so that two spellings of one file share a row.

    A name that is not valid UTF-8 (SQLite text must be) keeps its odd bytes as escapes.
    A URL (repsample.fsio) is its own key.
    """
    if isinstance(path, str) and fsio.is_url(path):
        return path
    return os.fsencode(os.path.realpath(path)).decode("utf-8", "backslashreplace")
