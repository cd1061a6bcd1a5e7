"""Exact duplicates: files with the same content hash (SHA-256 of the bytes) are one content."""

from __future__ import annotations

from collections.abc import Sequence


def content_ids(hashes: Sequence[str | None]) -> tuple[list[int], list[str]]:
    """Per file, the number of its content (-1 when unreadable), and the distinct hashes in order.

    Identical files share one number, so each content is embedded, searched and counted once.
    """
    index: dict[str, int] = {}
    ids = []
    for digest in hashes:
        if digest is None:
            ids.append(-1)
        else:
            ids.append(index.setdefault(digest, len(index)))
    return ids, list(index)
