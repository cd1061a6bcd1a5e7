"""The options of a selection run: one frozen record, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from repsample.allocate import ALLOCATIONS
from repsample.backends import BACKENDS, PRECISIONS, check_precision
from repsample.cache import default_cache_path
from repsample.engines import check_engine
from repsample.errors import RepsampleError
from repsample.hygiene.findings import DEFAULT_THRESHOLD
from repsample.models import get_model
from repsample.scan import DEFAULT_EXTENSIONS, normalize_extensions
from repsample.select import STRATEGIES

EXPORT_MODES = ("copy", "hardlink", "symlink", "none")


@dataclass(frozen=True)
class SelectConfig:
    """Everything that decides what ``select`` does (paths apart)."""

    per_class: int = 1000
    """Images to keep per group; a group with fewer valid images keeps them all."""
    fraction: float | None = None
    """When set, each group keeps this share of its valid images (at least 1), not per_class."""
    keep: Path | None = None
    """manifest.csv of an earlier selection: its selected images stay, new ones top them up."""
    model: str = "efficientnet-lite0"
    """Registered embedding model (``repsample models``)."""
    weights: str = "default"
    """'default' (pretrained), 'random' (untrained, for tests) or a local state_dict path."""
    strategy: str = "herding"
    """Registered selection strategy (``repsample strategies``)."""
    allocation: str = "proportional"
    """How a group's budget is split across its clusters."""
    k_min: int = 5
    k_max: int = 20
    seed: int = 42
    """One seed for KMeans, silhouette sampling and every random choice."""
    silhouette_sample: int = 3000
    """Above this many images, the silhouette is computed on a seeded sample of this size."""
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    groups: tuple[str, ...] | None = None
    """Restrict the run to these groups (paths relative to INPUT)."""
    follow_symlinks: bool = False
    """Follow symlinks that lead outside INPUT (by default INPUT is a closed world)."""
    mode: str = "copy"
    """How selected files reach OUTPUT: copy, hardlink, symlink or none."""
    device: str = "auto"
    backend: str = "auto"
    """Inference backend: auto (ONNX Runtime on CPU where installed), torch or onnx."""
    precision: str = "fp32"
    """fp32; int8 (CPU: ONNX Runtime, statically quantized); bf16 (CPU with native bf16: OpenVINO,
    or CUDA); fp16 (CUDA). Part of the embedding cache key; see docs/benchmarks.md for the cost."""
    batch_size: int = 64
    workers: int | None = None
    """Decoding threads; None picks min(4, CPUs). With engine ray: model actors."""
    engine: str = "local"
    """Who hashes, decodes and embeds: local (this process) or ray (a Ray Data pipeline)."""
    ray_address: str | None = None
    """Ray cluster to join (engine ray); None starts a local Ray."""
    cache: Path | None = None
    """Embedding cache database; None uses the user's cache folder."""
    overwrite: bool = False
    report: bool = True
    """Write OUTPUT/report.html after the export (``repsample report OUTPUT`` rebuilds it)."""
    dedup: bool = True
    """Near-duplicate images in a group count once: only the first path of each set is eligible."""
    drop_leaks: bool = False
    """Keep train images that also appear (exact or near) in another split out of the selection."""
    dup_threshold: float = DEFAULT_THRESHOLD
    """Cosine similarity of embeddings from which two images are near-duplicates."""

    def validate(self) -> None:
        """Raise RepsampleError naming the first bad value and what is allowed."""
        if self.per_class < 1:
            raise RepsampleError(f"--per-class must be at least 1, got {self.per_class}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise RepsampleError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.keep is not None and not Path(self.keep).is_file():
            raise RepsampleError(f"--keep {self.keep} is not a file; point it at a manifest.csv")
        if not 1 <= self.k_min <= self.k_max:
            raise RepsampleError(
                f"need 1 <= --k-min <= --k-max, got --k-min {self.k_min} --k-max {self.k_max}"
            )
        if self.silhouette_sample < 100:
            raise RepsampleError(f"silhouette sample must be at least 100, got {self.silhouette_sample}")
        if self.batch_size < 1:
            raise RepsampleError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise RepsampleError(f"--workers must be 0 or more, got {self.workers}")
        if self.mode not in EXPORT_MODES:
            raise RepsampleError(f"unknown --mode {self.mode!r}; choose one of: {', '.join(EXPORT_MODES)}")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise RepsampleError(f"unknown --device {self.device!r}; choose auto, cpu or cuda")
        check_engine(self.engine)
        if self.ray_address and self.engine != "ray":
            raise RepsampleError("--ray-address needs --engine ray")
        if self.backend not in BACKENDS:
            raise RepsampleError(f"unknown --backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS or self.device != "auto":
            check_precision(self.precision, self.device, self.backend)  # auto: once resolved
        if self.weights not in ("default", "random") and not Path(self.weights).is_file():
            raise RepsampleError(
                f"--weights {self.weights!r} is neither 'default', 'random' nor an existing file"
            )
        if not 0 < self.dup_threshold <= 1:
            raise RepsampleError(f"--dup-threshold must be in (0, 1], got {self.dup_threshold}")
        normalize_extensions(self.extensions)
        get_model(self.model)
        STRATEGIES.get(self.strategy)
        ALLOCATIONS.get(self.allocation)

    @property
    def cache_path(self) -> Path:
        """The embedding cache database: ``cache``, or the default in the user's cache folder."""
        return self.cache or default_cache_path()

    def budget(self, valid: int) -> int:
        """Images to keep from a group with this many valid images (before the cap at valid)."""
        if self.fraction is None:
            return self.per_class
        return max(1, int(self.fraction * valid + 0.5))  # round half up
