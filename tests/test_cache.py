"""The embedding cache: what is stored under which model, and the file fast path."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from repsample.cache import RACY_NS, ContentCache, FileStat
from repsample.embedding.fingerprint import file_stat, fingerprint
from repsample.inputs.folder import ImageFile, scan


def test_stored_and_get_many_agree_per_model(tmp_path: Path) -> None:
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.put_many("m1", vectors=[("a", np.ones(3, np.float32))], errors=[("b", "corrupt")])
        cache.put_many("m2", vectors=[("c", np.zeros(3, np.float32))])
        assert cache.stored(["a", "b", "c", "d", "a"], "m1") == {"a", "b"}
        entries = cache.get_many(["a", "b", "c"], "m1")
        assert set(entries) == cache.stored(["a", "b", "c"], "m1")
        assert entries["b"].vector is None and entries["b"].error == "corrupt"
        np.testing.assert_array_equal(entries["a"].vector, np.ones(3))
        cache.put_many("m1", vectors=[("a", np.zeros(3, np.float32))])  # first write wins
        np.testing.assert_array_equal(cache.get_many(["a"], "m1")["a"].vector, np.ones(3))


def test_fast_path_needs_the_same_size_mtime_inode_and_ctime(tmp_path: Path) -> None:
    stat = FileStat("/x.jpg", 10, 100, 7, 50)
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.remember_hashes([(stat, "h1")], stat_from_ns=50 + RACY_NS + 1)
        assert cache.known_hashes([stat]) == {"/x.jpg": "h1"}
        for changed in (stat._replace(size=11), stat._replace(mtime_ns=101),
                        stat._replace(ino=8), stat._replace(ctime_ns=51)):
            assert cache.known_hashes([changed]) == {}, changed
        assert cache.known_hashes([FileStat("/y.jpg", 10, 100, 7, 50)]) == {}


def test_a_file_changed_just_before_it_was_read_is_not_remembered(tmp_path: Path) -> None:
    """git's racily clean case: a change within the same timestamp tick could go unseen."""
    stat = FileStat("/x.jpg", 10, 100, 7, 50)
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.remember_hashes([(stat, "h1")], stat_from_ns=50 + RACY_NS)
        assert cache.known_hashes([stat]) == {}


def scan_one(root: Path) -> ImageFile:
    (group,) = scan(root, (".jpg",))
    return group.files[0]


def test_a_file_rewritten_with_its_size_and_mtime_set_back_is_hashed_again(tmp_path: Path) -> None:
    """A real file: same size, mtime restored with os.utime; only inode/ctime can tell."""
    path = tmp_path / "data" / "g" / "a.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"A" * 4096)
    time.sleep(RACY_NS / 1e9 + 0.1)  # older than the racy window, so its hash is remembered
    cache_file = tmp_path / "c.sqlite"
    with ContentCache(cache_file) as cache:
        first = scan_one(tmp_path / "data")
        assert fingerprint([first], cache)[0].hash == hashlib.sha256(b"A" * 4096).hexdigest()
        assert cache.known_hashes([file_stat(first)])  # remembered: the fast path holds it

        with open(path, "r+b") as fh:  # rewritten in place: same inode, same size
            fh.write(b"B" * 4096)
        os.utime(path, ns=(first.mtime_ns, first.mtime_ns))
        again = scan_one(tmp_path / "data")
        assert (again.size, again.mtime_ns) == (first.size, first.mtime_ns)
        assert fingerprint([again], cache)[0].hash == hashlib.sha256(b"B" * 4096).hexdigest()


def test_schema_1_cache_keeps_its_vectors_and_drops_its_old_fast_path(tmp_path: Path) -> None:
    """A cache written before inode/ctime and checksums still serves its vectors."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL);
        CREATE TABLE embeddings (hash TEXT NOT NULL, model TEXT NOT NULL, dim INTEGER,
            vector BLOB, error TEXT, PRIMARY KEY (hash, model)) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        INSERT INTO files VALUES ('/x.jpg', 10, 100, 'h1');
        """
    )
    vector = np.arange(4, dtype=np.float32)
    db.execute("INSERT INTO embeddings VALUES ('h1', 'm', 4, ?, NULL)", (vector.tobytes(),))
    db.commit()
    db.close()
    with ContentCache(path) as cache:
        np.testing.assert_array_equal(cache.get_many(["h1"], "m")["h1"].vector, vector)
        assert cache.known_hashes([FileStat("/x.jpg", 10, 100, 0, 0)]) == {}
    tables = {name for (name,) in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "files" not in tables and "file_hashes" in tables


def test_a_caller_that_knows_no_inode_or_ctime_keeps_its_fast_path(tmp_path: Path) -> None:
    """embed_images-style files (ino = ctime = 0): remembered under the key they will bring."""
    path = tmp_path / "a.jpg"
    path.write_bytes(b"A" * 100)
    st = path.stat()
    image = ImageFile(path, "a.jpg", "", st.st_size, st.st_mtime_ns)
    with ContentCache(tmp_path / "c.sqlite") as cache:
        fingerprint([image], cache)
        assert cache.known_hashes([file_stat(image)]) == {
            file_stat(image).path: hashlib.sha256(b"A" * 100).hexdigest()}
