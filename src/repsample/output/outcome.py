"""A group's outcome: what ``select`` did with one group. The pipeline builds it, it writes itself
into run.json (``record``), repsample.output.records reads it back, and the report shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GroupResult:
    """What happened to one group."""

    name: str
    images: int
    errors: int
    selected: int
    k: int  # 0 when the group was kept whole without clustering
    silhouettes: dict[int, float]
    silhouette_sample: int | None
    seconds: dict[str, float]
    note: str | None = None
    embedded: int = 0  # images decoded and embedded in this run (0: all from the cache)
    excluded: int = 0  # valid images not eligible: duplicates (--dedup), leaks (--drop-leaks), outliers
    outliers: int = 0  # of the excluded, those --drop-outliers set aside
    outside_links: int = 0  # image symlinks leading outside INPUT, not followed (not in run.json)

    def record(self) -> dict[str, Any]:
        """run.json's object for this group (run.json's "groups" holds it under the name)."""
        return {
            "images": self.images,
            "errors": self.errors,
            "valid": self.images - self.errors,
            "k": self.k,
            "silhouette": {str(k): round(v, 6) for k, v in self.silhouettes.items()},
            "silhouette_sample": self.silhouette_sample,
            "selected": self.selected,
            "embedded": self.embedded,
            "excluded": self.excluded,
            "outliers": self.outliers,
            "note": self.note,
            "seconds": self.seconds,
        }
