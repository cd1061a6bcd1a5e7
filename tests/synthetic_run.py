"""A finished run's OUTPUT written directly (manifest.csv, run.json, an embedding cache), for the
report at a scale `repsample select` would take hours to embed on this machine.

Used by tests/report/test_report_scale.py (tiny generated pictures) and bench/report_size.py (photos).
Every INPUT file is a hard link to one of a few pictures, so 100,000 of them cost seconds; each
manifest row still has its own content hash, so the report treats them as distinct images.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from repsample.cache import ContentCache
from repsample.output.layout import MANIFEST_FIELDS

CACHE_KEY = "synthetic|16d"
SCORES = ("typicality", "outlier_score", "uniqueness", "duplicate_similarity", "reason")


def write_run(root: Path, groups: int, per_group: int, kept: int, pictures: Sequence[Path],
              k: int = 8, seed: int = 0, scores: bool = False) -> Path:
    """OUTPUT under root/out for groups x per_group images of INPUT root/in; returns OUTPUT.

    kept images per group are selected; clusters are k blobs in 16 dimensions with weak
    silhouettes (0.05-0.08), like a real group of photographs. scores: fill the score columns
    (typicality, outlier_score, ...) where this repsample's manifest has them, else add them.
    """
    rng = np.random.default_rng(seed)
    data, out = root / "in", root / "out"
    out.mkdir(parents=True)
    fields = list(MANIFEST_FIELDS)
    if scores:
        fields += [c for c in SCORES if c not in fields]
    centres = rng.normal(0, 1, (k, 16))
    vectors: list[tuple[str, np.ndarray]] = []
    record_groups = {}
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        for g in range(groups):
            name = f"g{g:02d}"
            (data / name).mkdir(parents=True)
            ranks = [0] * k
            for i in range(per_group):
                path = f"{name}/img_{i:05d}.jpg"
                os.link(pictures[(g * per_group + i) % len(pictures)], data / path)
                cluster = i % k
                digest = hashlib.sha256(path.encode()).hexdigest()
                vector = centres[cluster] + rng.normal(0, 1.6, 16)
                vectors.append((digest, vector.astype(np.float32)))
                selected = i < kept
                ranks[cluster] += selected
                row: dict[str, object] = {
                    "path": path, "group": name, "status": "selected" if selected else "not_selected",
                    "cluster": cluster, "distance": f"{np.linalg.norm(vector - centres[cluster]):.4f}",
                    "rank": ranks[cluster] if selected else "", "hash": digest}
                if scores:
                    outlier = float(rng.random())
                    row.update(typicality=f"{1 - outlier:.4f}", outlier_score=f"{outlier:.4f}",
                               uniqueness=f"{rng.random():.4f}",
                               reason="outlier" if not selected and outlier > 0.995 else "")
                writer.writerow(row)
            record_groups[name] = {
                "images": per_group, "errors": 0, "valid": per_group, "k": k, "selected": kept,
                "silhouette": {str(j): round(0.05 + 0.03 * (j == k) + 0.002 * j, 4)
                               for j in range(5, k + 3)},
                "silhouette_sample": None, "note": None, "seconds": {"select": 0.1}}
    cache = root / "cache.sqlite"
    with ContentCache(cache) as store:
        store.put_many(CACHE_KEY, vectors)
    record = {
        "repsample_version": "synthetic", "command": ["synthetic_run.py"], "input": str(data),
        "output": str(out), "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T01:00:00+00:00",
        "parameters": {"per_class": kept, "strategy": "herding", "allocation": "proportional",
                       "seed": seed, "cache": str(cache), "mode": "none"},
        "model": {"name": "synthetic", "weights": "random", "cache_key": CACHE_KEY},
        "totals": {"groups": groups, "images": groups * per_group, "errors": 0,
                   "selected": groups * kept},
        "groups": record_groups}
    (out / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return out
