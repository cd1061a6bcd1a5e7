"""The embedding cache: what is stored under which model, and the file fast path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repsample.cache import EmbeddingCache


def test_stored_and_get_many_agree_per_model(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "c.sqlite") as cache:
        cache.put_many("m1", vectors=[("a", np.ones(3, np.float32))], errors=[("b", "corrupt")])
        cache.put_many("m2", vectors=[("c", np.zeros(3, np.float32))])
        assert cache.stored(["a", "b", "c", "d", "a"], "m1") == {"a", "b"}
        entries = cache.get_many(["a", "b", "c"], "m1")
        assert set(entries) == cache.stored(["a", "b", "c"], "m1")
        assert entries["b"].vector is None and entries["b"].error == "corrupt"
        np.testing.assert_array_equal(entries["a"].vector, np.ones(3))
        cache.put_many("m1", vectors=[("a", np.zeros(3, np.float32))])  # first write wins
        np.testing.assert_array_equal(cache.get_many(["a"], "m1")["a"].vector, np.ones(3))


def test_fast_path_needs_same_size_and_mtime(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "c.sqlite") as cache:
        cache.remember_hashes([("/x.jpg", 10, 100, "h1")])
        assert cache.known_hashes([("/x.jpg", 10, 100)]) == {"/x.jpg": "h1"}
        assert cache.known_hashes([("/x.jpg", 11, 100), ("/y.jpg", 10, 100)]) == {}
