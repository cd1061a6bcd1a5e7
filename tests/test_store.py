"""The store's one memo helper (recall, remember) and its one content-key builder (content_key).

Every stored result is named by content_key; the keys must keep the values they had when each
module built its own (the same bytes hashed the same way), or every cache made before would be
forgotten at once. The reference spellings below are those builders as they were.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repsample.cache import ContentCache, content_key
from repsample.embedding import neighbours as search
from repsample.embedding.descriptor import DESCRIPTOR_KEY
from repsample.embedding.vectors_file import read_vectors
from repsample.fsio import hash_file
from repsample.hygiene import confirm, near, pairs
from repsample.hygiene import outliers as scores
from repsample.selection import cluster

ROWS = st.lists(st.text(), max_size=12)
NUMBERS = st.integers(-(2**63), 2**63)
FIXTURE = [HealthCheck.function_scoped_fixture]


def _lines(head: str, rows: Sequence[str]) -> str:
    digest = hashlib.sha256(head.encode())
    for row in rows:
        digest.update(row.encode() + b"\n")
    return digest.hexdigest()


def test_content_key_hashes_the_settings_then_a_line_per_row() -> None:
    assert content_key() == hashlib.sha256(b"").hexdigest()
    assert content_key("v1|m", ["ab", "c"]) == hashlib.sha256(b"v1|mab\nc\n").hexdigest()
    assert content_key("v1|m", ["ab", "c"]) != content_key("v1|m", ["c", "ab"])  # rows in order


@settings(max_examples=200, deadline=None)
@given(vectors=st.text(), rows=ROWS, k_min=NUMBERS, k_max=NUMBERS, seed=NUMBERS, sample=NUMBERS)
def test_clustering_keys_keep_their_values(vectors: str, rows: list[str], k_min: int, k_max: int,
                                           seed: int, sample: int) -> None:
    head = f"{cluster.VERSION}|{cluster.SWEEP_LIMIT}|{vectors}|{k_min}|{k_max}|{seed}|{sample}"
    assert cluster.clustering_key(vectors, rows, k_min, k_max, seed, sample) == _lines(head, rows)


@settings(max_examples=200, deadline=None)
@given(vectors=st.text(), rows=ROWS, threshold=st.floats())
def test_pair_keys_keep_their_values(vectors: str, rows: list[str], threshold: float) -> None:
    head = (f"near-duplicates|v{pairs.VERSION}|{vectors}|{threshold!r}|{near.NEIGHBOURS}|"
            f"{search.EXACT_UP_TO}|{search.PCA_DIMS}|{search.CELLS_PER_SQRT_N}|{search.PROBES}|"
            f"{search.REFINE}|{DESCRIPTOR_KEY}|"
            f"{confirm.MAX_DISTANCE}|{confirm.MAX_COLOUR_SHIFT}|{confirm.MIN_CORRELATION}")
    assert pairs.pairs_key(vectors, rows, threshold) == _lines(head, rows)


@settings(max_examples=200, deadline=None)
@given(vectors=st.text(), rows=ROWS, seed=NUMBERS, rest=ROWS)
def test_score_keys_keep_their_values(vectors: str, rows: list[str], seed: int,
                                      rest: list[str]) -> None:
    head = (f"image-scores|v{scores.VERSION}|{vectors}|{scores.DEFAULT_SCORER}|{scores.NEIGHBOURS}|"
            f"{scores.OUTLIER_NEIGHBOUR}|{scores.ACROSS}|{scores.EXACT_UP_TO}|{seed}")
    expected = _lines("", [head, _lines("", rows), *sorted(rest)])
    assert scores.scores_key(vectors, rows, seed, rest) == expected


@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE)
@given(rows=st.integers(1, 40), dim=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_a_vectors_file_is_named_by_its_bytes(tmp_path: Path, rows: int, dim: int,
                                              seed: int) -> None:
    matrix = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    np.save(tmp_path / "v.npy", matrix)
    (tmp_path / "v.txt").write_text("".join(f"img{i}.jpg\n" for i in range(rows)))
    data = (tmp_path / "v.npy").read_bytes() + (tmp_path / "v.txt").read_bytes()
    assert read_vectors(tmp_path / "v.npy").digest == hashlib.sha256(data).hexdigest()[:16]


def test_hash_file_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # over one read chunk
    (tmp_path / "f").write_bytes(data)
    assert hash_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


class _Counted:
    """A computation that counts its calls."""

    def __init__(self, value: bytes) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.value


def _decode(data: bytes) -> bytes | None:
    """Takes only what _encode wrote; raises on other bytes, as a damaged npz does."""
    if not data.startswith(b"ok:"):
        raise ValueError("damaged")
    return data[3:] or None  # an empty value: the decoder's "these do not add up"


def _encode(value: bytes) -> bytes:
    return b"ok:" + value


def test_remember_computes_once_then_reads(tmp_path: Path) -> None:
    compute = _Counted(b"result")
    with ContentCache(tmp_path / "c.sqlite") as cache:
        assert cache.recall("k", _decode, "thing") is None  # nothing stored: no warning either
        assert cache.remember("k", compute, _encode, _decode, "thing") == b"result"
        assert cache.get_blob("k") == b"ok:result"
    with ContentCache(tmp_path / "c.sqlite") as reopened:
        assert reopened.remember("k", compute, _encode, _decode, "thing") == b"result"
        assert reopened.remember("other", compute, _encode, _decode, "thing") == b"result"
    assert compute.calls == 2  # "k" once, "other" once


@pytest.mark.parametrize("damaged", [b"", b"not ours", b"ok:"])
def test_a_damaged_entry_is_warned_of_computed_and_stored_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damaged: bytes) -> None:
    compute = _Counted(b"fresh")
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.put_blob("k", damaged)
        with caplog.at_level(logging.WARNING):
            got = cache.remember("k", compute, _encode, _decode, "clustering")
        assert got == b"fresh" and compute.calls == 1
        assert "stored clustering unreadable; computing it again" in caplog.text
        assert cache.get_blob("k") == b"ok:fresh"  # replaced: the next run reads it
        caplog.clear()
        assert cache.remember("k", compute, _encode, _decode, "clustering") == b"fresh"
        assert compute.calls == 1 and "unreadable" not in caplog.text


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE)
@given(stored=st.binary(max_size=64))
def test_recall_never_raises_on_stored_bytes(tmp_path: Path, stored: bytes) -> None:
    """Whatever bytes a damaged file leaves, recall gives a value or None, never an error."""
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.put_blob("k", stored)
        got = cache.recall("k", _decode, "near-duplicate pairs", "searching again")
        assert got == ((stored[3:] or None) if stored.startswith(b"ok:") else None)


def test_a_stored_clustering_round_trips_through_remember(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    made = cluster.choose_k(X, 2, 4, seed=0, silhouette_sample=1000)
    with ContentCache(tmp_path / "c.sqlite") as cache:
        cache.put_blob("k", made.to_bytes())
        got = cache.remember("k", lambda: pytest.fail("recomputed"), cluster.Clustering.to_bytes,
                             cluster.Clustering.from_bytes, "clustering")
    assert got.k == made.k and got.silhouettes == made.silhouettes
    np.testing.assert_array_equal(got.labels, made.labels)
