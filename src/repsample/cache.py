"""The embedding cache: an SQLite database (WAL) keyed by file content and model identity.

``files`` maps (path, size, mtime) to a content hash so an unchanged file is never
re-read. ``embeddings`` maps (content hash, model key) to a vector, or to the decode error the
content gave, so a renamed or copied file, or a second dataset sharing images, costs nothing.
Every batch is committed as it lands: a killed run loses at most the batch in flight.
``clusterings`` keeps each group's chosen clustering under a key naming its vectors and the
sweep's parameters, so a rerun on unchanged data skips the k sweep too.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import platformdirs

from repsample import fsio
from repsample.errors import RepsampleError

_T = TypeVar("_T")
SCHEMA_VERSION = 1
_CHUNK = 1 << 20


def default_cache_path() -> Path:
    return Path(platformdirs.user_cache_dir("repsample")) / "embeddings.sqlite"


def hash_file(path: str | Path) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with fsio.open_binary(path) as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """What the cache knows of one content under one model: a vector or an error."""

    vector: np.ndarray | None
    error: str | None


class EmbeddingCache:
    """A connection to the cache database; one per process (SQLite handles the locking)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._create()
        except (OSError, sqlite3.Error) as exc:
            raise RepsampleError(
                f"cannot use the embedding cache {self.path} ({exc}); pass --cache PATH to another file"
            ) from None

    def _create(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS files (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                hash TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS embeddings (
                hash TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER, vector BLOB, error TEXT,
                PRIMARY KEY (hash, model)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS clusterings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
            """
        )
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files: the (path, size, mtime) fast path -------------------------------------------

    def known_hashes(self, stats: Sequence[tuple[str, int, int]]) -> dict[str, str]:
        """Hashes of the files whose size and mtime are unchanged since they were hashed."""
        out: dict[str, str] = {}
        for chunk in _chunks(stats, 500):
            by_path = {p: (s, m) for p, s, m in chunk}
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT path, size, mtime_ns, hash FROM files WHERE path IN ({marks})",
                [p for p, _, _ in chunk],
            )
            for path, size, mtime_ns, digest in rows:
                if by_path[path] == (size, mtime_ns):
                    out[path] = digest
        return out

    def remember_hashes(self, rows: Iterable[tuple[str, int, int, str]]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)

    # -- embeddings ---------------------------------------------------------------------------

    def get_many(self, hashes: Sequence[str], model: str) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        for chunk in _chunks(list(dict.fromkeys(hashes)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT hash, dim, vector, error FROM embeddings "
                f"WHERE model = ? AND hash IN ({marks})",
                [model, *chunk],
            )
            for digest, dim, blob, error in rows:
                vector = None if blob is None else np.frombuffer(blob, np.float32, count=dim)
                out[digest] = Entry(vector, error)
        return out

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

    def put_many(
        self,
        model: str,
        vectors: Iterable[tuple[str, np.ndarray]] = (),
        errors: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Store one batch in one transaction. A content already stored is kept (first wins)."""
        vec_rows: list[tuple[object, ...]] = [
            (h, model, int(v.shape[0]), np.ascontiguousarray(v, np.float32).tobytes(), None)
            for h, v in vectors
        ]
        err_rows: list[tuple[object, ...]] = [(h, model, None, None, e) for h, e in errors]
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?, ?, ?)", vec_rows + err_rows
            )

    # -- clusterings: opaque blobs under a key the caller derives from its inputs -------------

    def get_blob(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM clusterings WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_blob(self, key: str, value: bytes) -> None:
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO clusterings VALUES (?, ?)", (key, value))

    def count(self, model: str | None = None) -> int:
        if model is None:
            row = self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)
            ).fetchone()
        return int(row[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error; immediate so writers queue, not fail."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


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
