"""The options of a selection run: one frozen record, each option declared once (default, help,
constraint), validated in one place; the command line is built from these declarations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repsample.backends import BACKENDS, PRECISIONS, check_precision
from repsample.cache import default_cache_path
from repsample.engines import ENGINES
from repsample.errors import UsageError
from repsample.hygiene.findings import DEFAULT_THRESHOLD
from repsample.params import Constraint, Device, ExistingFile, Integer, Interval, OneOf, validate
from repsample.scan import DEFAULT_EXTENSIONS, normalize_extensions

EXPORT_MODES = ("copy", "hardlink", "symlink", "none")


def _models() -> list[str]:
    from repsample.models import list_models

    return list_models()


def _strategies() -> list[str]:
    from repsample.select import list_strategies  # scikit-learn: loaded only when asked

    return list_strategies()


def _allocations() -> list[str]:
    from repsample.allocate import list_allocations

    return list_allocations()


def option(default: Any, help: str, constraint: Constraint | None = None) -> Any:
    """A SelectConfig field: its default, its help (the CLI's too) and what it accepts."""
    return dataclasses.field(default=default, metadata={"help": help, "constraint": constraint})


@dataclass(frozen=True)
class SelectConfig:
    """Everything that decides what ``select`` (and ``check``) does, paths apart."""

    per_class: int = option(1000, "Images to keep per group (folder that holds images); a group "
                             "with fewer eligible images keeps them all.", Integer(1))
    fraction: float | None = option(None, "Instead of per_class: keep this share of each group "
                                    "(at least 1 image).", Interval(0, 1, "right", optional=True))
    keep: Path | None = option(None, "manifest.csv of an earlier selection: its selected images "
                               "stay, new ones top them up.",
                               ExistingFile(optional=True, hint="point it at a manifest.csv"))
    model: str = option("efficientnet-lite0", "Embedding model (`repsample models` lists them).",
                        OneOf(_models))
    weights: str = option("default", "default (pretrained), random (untrained) or a local "
                          "state_dict file.", ExistingFile(("default", "random")))
    strategy: str = option("herding", "Selection strategy (`repsample strategies` lists them).",
                           OneOf(_strategies))
    allocation: str = option("proportional", "How a group's budget is split across its clusters.",
                             OneOf(_allocations))
    k_min: int = option(5, "Fewest clusters tried in a group.", Integer(1))
    k_max: int = option(20, "Most clusters tried in a group.", Integer(1))
    seed: int = option(42, "One seed for KMeans, silhouette sampling and every random choice.",
                       Integer(0, 2**32 - 1))
    silhouette_sample: int = option(3000, "Above this many images, the silhouette is computed on a "
                                    "seeded sample of this size.", Integer(100))
    extensions: tuple[str, ...] = option(DEFAULT_EXTENSIONS, "Image file extensions, matched in "
                                         "any case.")
    groups: tuple[str, ...] | None = option(None, "Only these groups (paths relative to INPUT).")
    follow_symlinks: bool = option(False, "Follow symlinks that lead outside INPUT (by default "
                                   "they are skipped and counted).")
    mode: str = option("copy", "How selected files reach OUTPUT (none: the manifest only).",
                       OneOf(lambda: EXPORT_MODES))
    device: str = option("auto", "auto, cpu, cuda or cuda:N.", Device())
    backend: str = option("auto", "Inference: auto = ONNX Runtime on the CPU, PyTorch on CUDA.",
                          OneOf(lambda: BACKENDS))
    precision: str = option("fp32", "Embedding arithmetic: int8 (CPU, ONNX Runtime), bf16 (CPU with "
                            "native bf16 via OpenVINO, or CUDA), fp16 (CUDA). Faster, moves "
                            "neighbours; part of the cache key.", OneOf(lambda: PRECISIONS))
    batch_size: int = option(64, "Images per model call.", Integer(1))
    workers: int | None = option(None, "Decoding threads [default: min(4, CPUs)]; with engine ray, "
                                 "model actors.", Integer(0, optional=True))
    engine: str = option("local", "Who hashes, decodes and embeds: local (this process) or ray (a "
                         "Ray Data pipeline; pip install 'repsample[ray]').", OneOf(lambda: ENGINES))
    ray_address: str | None = option(None, "Ray cluster to join (engine ray) [default: start a "
                                     "local Ray].")
    cache: Path | None = option(None, "Embedding cache database [default: in the user's cache "
                                "folder].")
    overwrite: bool = option(False, "Replace an earlier result in OUTPUT.")
    report: bool = option(True, "Write OUTPUT/report.html after the export.")
    dedup: bool = option(True, "Near-duplicates in a group count once: only the first path is "
                         "eligible. Off, the near-duplicate search is skipped (exact copies are "
                         "still listed).")
    drop_leaks: bool = option(False, "Keep train images that also appear (exact or near) in "
                              "another split out of the selection.")
    dup_threshold: float = option(DEFAULT_THRESHOLD, "Embedding cosine similarity from which a pair "
                                  "is checked as a near-duplicate.", Interval(0, 1, "right"))

    def validate(self) -> None:
        """Raise UsageError naming the first bad value and what is allowed."""
        validate({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, CONSTRAINTS)
        if self.k_min > self.k_max:
            raise UsageError(f"({self.k_min}) must not exceed k_max ({self.k_max})", option="k_min")
        if self.ray_address and self.engine != "ray":
            raise UsageError("needs engine ray", option="ray_address")
        if self.device != "auto":
            check_precision(self.precision, self.device, self.backend)  # auto: once resolved
        normalize_extensions(self.extensions)

    @property
    def cache_path(self) -> Path:
        """The embedding cache database: ``cache``, or the default in the user's cache folder."""
        return self.cache or default_cache_path()

    def budget(self, valid: int) -> int:
        """Images to keep from a group with this many valid images (before the cap at valid)."""
        if self.fraction is None:
            return self.per_class
        return max(1, int(self.fraction * valid + 0.5))  # round half up


CONSTRAINTS: dict[str, Constraint] = {
    f.name: f.metadata["constraint"] for f in dataclasses.fields(SelectConfig)
    if f.metadata.get("constraint") is not None
}


CHECK_OPTIONS = ("extensions", "groups", "follow_symlinks", "model", "weights", "device", "backend",
                 "precision", "batch_size", "workers", "engine", "ray_address", "cache",
                 "dup_threshold", "overwrite")
"""The options ``check`` shares with ``select``: what to scan, how to embed, the threshold."""
