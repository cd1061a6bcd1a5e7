"""What a rerun reuses of a selection: a fit's new picks and the weights of all its picks, stored
by everything that decides them, so that unchanged data is not selected again (the strategy's
exchanges and the weights' solve were most of a rerun's selection time)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repsample._version import __version__
from repsample.cache import content_key
from repsample.selection.strategies import ClusterSelector, are_new_rows

VERSION = 1  # bump when a strategy's picks or the weights for the same input may change


@dataclass(frozen=True)
class StoredPicks:
    """A fit's ``new_indices_`` (pick order) and the weights of its selected rows (sorted)."""

    new: np.ndarray  # int64
    weights: np.ndarray  # float64

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, new=self.new.astype(np.int64), weights=self.weights.astype(np.float64))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, rows: int, keep: Sequence[int]) -> StoredPicks | None:
        """None unless the picks are new rows among ``rows`` and the weights one per selected
        row: a damaged entry only means selecting again."""
        with np.load(io.BytesIO(data)) as z:
            new, weights = z["new"].astype(np.int64), z["weights"].astype(np.float64)
        fits = (new.ndim == 1 and are_new_rows(new, keep, rows)
                and weights.shape == (len(new) + len(set(keep)),))
        return cls(new, weights) if fits else None


def picks_key(selector: ClusterSelector, clustering: str, keep: Sequence[int]) -> str | None:
    """Names a fit's picks: the strategy (class and every parameter, the budget among them), the
    clustering's key (which names the vectors, their rows and the k sweep) and the kept rows.
    None for a strategy a user registered: repsample's version does not name its code, which may
    change between runs under the same name, so its picks are never stored."""
    kind = type(selector)
    if not kind.__module__.startswith("repsample."):
        return None
    params = json.dumps(selector.get_params(deep=False), sort_keys=True, default=str)
    return content_key(f"picks|{VERSION}|{__version__}|{kind.__module__}.{kind.__qualname__}|"
                       f"{params}|{clustering}|keep:{','.join(map(str, keep))}")
