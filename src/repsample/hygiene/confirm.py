"""Verify: a candidate pair from the embeddings is a near-duplicate only if the pixels agree.

Pooled CNN embeddings rank images by what they show, not by whether they are the same picture:
two different photos of bark can be closer than a photo and its own JPEG re-encode (see
bench/duplicates.py). So a pair above the embedding threshold is confirmed by a perceptual hash:
the 8 x 8 lowest DCT frequencies of the 32 x 32 grey thumbnail, one bit per coefficient above
their median (pHash). Re-encodes and resizes keep nearly all bits; a left-right mirror flips the
sign of the odd horizontal frequencies, so it is compared too. pHash is blind to colour, so the
mean colours must agree as well. And 64 bits are coarse: on small, plain images (Fashion-MNIST's
sneakers on black) different items share a pHash, so the 32 x 32 grey thumbnails themselves must
correlate almost perfectly (normalised cross-correlation, mirrored too). The descriptors
(descriptor.py) are stored in the embedding cache under their own key, like a model's vectors;
the embed stage makes them from the image it decodes anyway, so they are read here, and
decoded again only for contents embedded another way (the Ray engine, an older cache).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from repsample.cache import ContentCache
from repsample.embedding.decode import DecodeError
from repsample.embedding.descriptor import DESCRIPTOR_KEY, describe

logger = logging.getLogger(__name__)

MAX_DISTANCE = 6
"""Most differing pHash bits (of 64) for a confirmed near-duplicate. On bench/duplicates.py,
re-encodes and resizes differ by at most 6, distinct photos by at least 8."""
MAX_COLOUR_SHIFT = 12.0
"""Largest difference of a channel's mean (0-255) for a confirmed near-duplicate."""
MIN_CORRELATION = 0.985
"""Least normalised cross-correlation of the 32 x 32 grey thumbnails. Measured here: JPEG
re-encodes (quality 40) of photos and Fashion-MNIST images >= 0.987, halved photos >= 0.999;
distinct Fashion-MNIST items that pHash and the embedding confused <= 0.978."""
_MIRROR = np.where(np.arange(8) % 2 == 1, -1.0, 1.0)[None, :]


def _grey(d: np.ndarray) -> np.ndarray:
    return d[:1024].reshape(32, 32)


def bits(d: np.ndarray, mirrored: bool = False) -> np.uint64:
    """pHash: the 8 x 8 lowest DCT frequencies of the thumbnail, one bit each above their median,
    packed in one 64-bit word (differing bits are then one XOR and a popcount)."""
    from scipy.fft import dctn

    block = dctn(_grey(d).astype(np.float64), norm="ortho")[:8, :8] * (_MIRROR if mirrored else 1.0)
    packed = np.packbits((block > np.median(block)).ravel())
    word: np.uint64 = np.uint64(int.from_bytes(packed.tobytes(), "big"))
    return word


def descriptors(
    paths: Mapping[str, Path | str], cache: ContentCache, workers: int = 2
) -> dict[str, np.ndarray]:
    """The descriptor per content hash (paths: one file per hash); cached, computed if missing."""
    known = cache.get_many(list(paths), DESCRIPTOR_KEY)
    out = {h: e.vector for h, e in known.items() if e.vector is not None}
    todo = [h for h in paths if h not in known]

    def compute(digest: str) -> np.ndarray | str:
        try:
            return describe(paths[digest])
        except DecodeError as exc:
            return str(exc)

    # PIL releases the GIL while decoding, so threads overlap.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(todo), 256):
            chunk = todo[start : start + 256]
            results = list(pool.map(compute, chunk))
            cache.put_many(
                DESCRIPTOR_KEY,
                vectors=[(h, r) for h, r in zip(chunk, results, strict=True) if not isinstance(r, str)],
                errors=[(h, r) for h, r in zip(chunk, results, strict=True) if isinstance(r, str)],
            )
            out.update((h, r) for h, r in zip(chunk, results, strict=True) if not isinstance(r, str))
    return out


class Verifier:
    """Confirms candidate pairs of contents (numbered like ``hashes``) a chunk at a time, vectorised.

    Descriptors are fetched or computed on first need: contents never in a candidate pair are
    never decoded again.
    """

    def __init__(self, hashes: list[str], paths: Mapping[str, Path | str], cache: ContentCache,
                 workers: int = 2, max_distance: int = MAX_DISTANCE) -> None:
        self.hashes, self.paths, self.cache, self.workers = hashes, paths, cache, workers
        self.max_distance = max_distance
        n = len(hashes)
        self._plain = np.zeros(n, np.uint64)
        self._mirror = np.zeros(n, np.uint64)
        self._colour = np.zeros((n, 3), np.float32)
        self._thumb = np.zeros((n, 32, 32), np.float16)  # 2 KiB a content: 200 MB at 100,000
        self._state = np.zeros(n, np.int8)  # 0 unknown, 1 described, -1 cannot be described

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        self._describe(np.union1d(first, second))
        ok = (self._state[first] == 1) & (self._state[second] == 1)
        plain = np.bitwise_count(self._plain[first] ^ self._plain[second])
        mirror = np.bitwise_count(self._plain[first] ^ self._mirror[second])
        shift = np.abs(self._colour[first] - self._colour[second]).max(axis=1)
        result: np.ndarray = (ok & (np.minimum(plain, mirror) <= self.max_distance)
                              & (shift <= MAX_COLOUR_SHIFT))
        if result.any():  # the costlier pixel check only for pairs that passed the rest
            hit = np.flatnonzero(result)
            a = self._thumb[first[hit]].astype(np.float32)
            b = self._thumb[second[hit]].astype(np.float32)
            corr = np.maximum((a * b).sum(axis=(1, 2)), (a * b[:, :, ::-1]).sum(axis=(1, 2)))
            result[hit] = corr >= MIN_CORRELATION
        return result

    def _describe(self, rows: np.ndarray) -> None:
        todo = [int(r) for r in rows if self._state[r] == 0]
        if not todo:
            return
        found = descriptors({self.hashes[r]: self.paths[self.hashes[r]] for r in todo}, self.cache,
                            self.workers)
        for r in todo:
            d = found.get(self.hashes[r])
            if d is None:
                self._state[r] = -1
                continue
            self._plain[r], self._mirror[r] = bits(d), bits(d, mirrored=True)
            self._colour[r] = d[1024:]
            self._thumb[r] = _grey(d)
            self._state[r] = 1
