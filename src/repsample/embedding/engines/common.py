"""What every engine takes and gives: the run's options and, per group, the stage's outcome.

Kept apart from the dispatch (``__init__``) so that the engines and the vectors file
(embedding/vectors_file.py) import these types without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repsample.embedding.decode import decode_workers
from repsample.embedding.fingerprint import Fingerprint


@dataclass(frozen=True)
class EmbedOptions:
    """What the engines need from SelectConfig (kept narrow so the engines don't depend on it)."""

    batch_size: int = 64
    workers: int | None = None
    """As asked. local: decoding threads; ray: model actors (None: one per CPU, or per GPU)."""
    device: str = "auto"
    """As asked for (auto, cpu, cuda): Ray workers resolve it on their own node."""
    backend: str = "auto"
    ray_address: str | None = None
    threads: int = field(init=False)
    """``workers`` as a number of hashing and decoding threads (None: min(4, CPUs)): settled
    here once, and passed down as it is to every stage of this process that runs threads."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", decode_workers(self.workers))


@dataclass(frozen=True)
class EmbedStage:
    """Per group: each file's fingerprint, how many contents were embedded now, stage seconds."""

    prints: dict[str, list[Fingerprint]]
    computed: dict[str, int]
    seconds: dict[str, dict[str, float]]
