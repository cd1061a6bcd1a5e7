"""The options of every command, each declared once (default, help, constraint): a selection
run's in one frozen record validated in one place (SelectConfig; ``check`` takes a part of it),
``report``'s, ``evaluate``'s and ``verify``'s in their own; the command line is built from these
declarations. A strategy's own parameters are declared with its selector (strategy_params).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repsample.cache import default_cache_path, foreign
from repsample.embedding.backends import BACKENDS, PRECISIONS, check_precision
from repsample.embedding.engines import ENGINES
from repsample.errors import UnknownNameError, UsageError, mention
from repsample.hygiene.findings import DEFAULT_THRESHOLD
from repsample.inputs.dispatch import InputOptions
from repsample.inputs.folder import DEFAULT_EXTENSIONS, normalize_extensions
from repsample.inputs.listing import Columns
from repsample.models.base import ONNX_PREFIX, ModelSpec
from repsample.models.onnx_file import RESIZES, onnx_model
from repsample.output.layout import ISSUE_TYPES
from repsample.params import Constraint, Device, ExistingFile, Integer, Interval, OneOf, Tunable, validate

EXPORT_MODES = ("copy", "hardlink", "symlink", "none")
ONNX_OPTIONS = ("input_size", "resize", "mean", "std")  # an onnx:PATH model's preprocessing
MISSING_VECTORS = ("error", "embed")
PROJECTIONS = ("auto", "pca", "umap")  # the report's 2-D map (repsample.report.embedmap)


def _models() -> list[str]:
    from repsample.models import list_models

    return list_models()


def _strategies() -> list[str]:
    from repsample.selection.strategies import list_strategies  # scikit-learn: loaded only when asked

    return list_strategies()


def _allocations() -> list[str]:
    from repsample.selection.allocate import list_allocations

    return list_allocations()


def _selection_allocations() -> list[str]:
    from repsample.selection.allocate import list_selection_allocations

    return list_selection_allocations()


@dataclass(frozen=True)
class IssueNames:
    """Image quality issues by name (repsample.hygiene.quality), or all of them."""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
            return f"must be a list of issue names such as ('blurry', 'dark'), got {value!r}"
        unknown = [v for v in value if v not in (*ISSUE_TYPES, "all")]
        if unknown:
            return f"has {unknown[0]!r}; choose from {', '.join(ISSUE_TYPES)} or all"
        return None

    def describe(self) -> str:
        return f"{', '.join(ISSUE_TYPES)} or all"


@dataclass(frozen=True)
class ModelName(OneOf):
    """A registered model's name, or onnx:PATH naming an existing file."""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value.startswith(ONNX_PREFIX):
            path = value[len(ONNX_PREFIX):]
            return None if Path(path).is_file() else f"{path!r}: no such ONNX file"
        problem = super().problem(value)
        return problem and f"{problem}, or onnx:PATH"

    def check(self, value: Any, option: str) -> None:
        """A missing onnx:PATH file is a UsageError; an unknown name an UnknownNameError."""
        problem = self.problem(value)
        if problem is not None and isinstance(value, str) and value.startswith(ONNX_PREFIX):
            raise UsageError(problem, option=option)
        super().check(value, option)


@dataclass(frozen=True)
class MaybeOneOf(OneOf):
    """A name from a list, or None (unset)."""

    def problem(self, value: Any) -> str | None:
        return None if value is None else super().problem(value)


@dataclass(frozen=True)
class CacheFile:
    """None (the default cache), or a path naming a new file or one of repsample's caches: an
    existing file of anyone else's is refused, never opened (repsample.cache.foreign)."""

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        if Path(value).name in ("", ".."):  # the command line gives '' as '.'
            return f"must name a database file, got {str(value)!r}"
        reason = foreign(Path(value))
        return reason and f"{str(value)!r} {reason}; name a new file or a repsample cache"


def option(default: Any, help: str, constraint: Constraint | None = None, *,
           metavar: str | None = None, repeatable: bool = False) -> Any:
    """A field of a command's options: its default, its help (the CLI's too), what it accepts,
    and on the command line its metavar and whether it is given once per value (repeatable)."""
    metadata = {"help": help, "constraint": constraint, "metavar": metavar, "repeatable": repeatable}
    if isinstance(default, dict):  # each record its own (frozen records share a default)
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_MODEL = "efficientnet-lite0"  # the default model


@dataclass(frozen=True)
class SelectConfig:
    """Everything that decides what ``select`` (and ``check``) does, paths apart."""

    per_class: int = option(1000, "Images to keep per group (folder that holds images); a group "
                             "with fewer eligible images keeps them all.", Integer(1))
    fraction: float | None = option(None, "Instead of per_class: keep this share of each group "
                                    "(at least 1 image).", Interval(0, 1, "right", optional=True))
    total: int | None = option(None, "Instead of per_class: this many images in all, split across "
                               "groups by --balance (a group gives at most what it has, the others "
                               "take up the rest).", Integer(1, optional=True))
    balance: str | None = option(None, "With --total: equal (classes as even as the data allows), "
                                 "proportional or sqrt (of group sizes) [default: equal].",
                                 MaybeOneOf(_allocations))
    keep: Path | None = option(None, "manifest.csv of an earlier selection: its selected images "
                               "stay, new ones top them up.",
                               ExistingFile(optional=True, hint="point it at a manifest.csv"))
    model: str = option(_MODEL, "Embedding model (`repsample models` lists them), "
                        "or onnx:PATH, an ONNX image encoder of yours.", ModelName(_models))
    weights: str = option("default", "default (pretrained), random (untrained) or a local "
                          "state_dict file.", ExistingFile(("default", "random")))
    input_size: int | str | tuple[int, int] | None = option(
        None, "onnx:PATH models: input WIDTHxHEIGHT, or one size [default: input_size in the JSON "
        "file beside the model, else the model's fixed size].")
    resize: str | None = option(None, "onnx:PATH models: stretch to the input size, or crop (fill it, "
                                "cut the centre) [default: the JSON file's, else stretch].",
                                MaybeOneOf(lambda: RESIZES))
    mean: str | tuple[float, ...] | None = option(None, "onnx:PATH models: per-channel mean of pixels "
                                                  "in [0, 1], r,g,b [default: the JSON file's, "
                                                  "else ImageNet's].")
    std: str | tuple[float, ...] | None = option(None, "onnx:PATH models: per-channel std, r,g,b "
                                                 "[default: the JSON file's, else ImageNet's].")
    embeddings: Path | None = option(None, "Vectors computed elsewhere, instead of the model: .npy "
                                     "(with a paths file), .npz or .parquet (a path and a vector "
                                     "column); rows match files by path relative to INPUT or "
                                     "content hash.", ExistingFile(optional=True))
    embeddings_paths: Path | None = option(None, "The paths of an .npy --embeddings, one a line in "
                                           "row order [default: beside it, same name, .txt].",
                                           ExistingFile(optional=True))
    missing_vectors: str = option("error", "Files --embeddings has no vector for: error (an error "
                                  "row) or embed (with --model, which must be the one that made "
                                  "the vectors).", OneOf(lambda: MISSING_VECTORS))
    strategy: str = option("refine", "Selection strategy (`repsample strategies` lists them).",
                           OneOf(_strategies))
    strategy_params: Mapping[str, Any] = option(
        {}, "Set a parameter of --strategy (`repsample strategies --parameters` lists them; "
        "unset, the strategy's default).", metavar="NAME=VALUE", repeatable=True)
    allocation: str = option("proportional", "How a group's budget is split across its clusters; "
                             "none: no cluster quotas, the clusters only describe the picks.",
                             OneOf(_selection_allocations))
    k_min: int = option(5, "Fewest clusters tried in a group.", Integer(1))
    k_max: int = option(20, "Most clusters tried in a group.", Integer(1))
    seed: int = option(42, "One seed for KMeans, silhouette sampling and every random choice.",
                       Integer(0, 2**32 - 1))
    silhouette_sample: int = option(3000, "Above this many images, the silhouette is computed on a "
                                    "seeded sample of this size.", Integer(100))
    extensions: tuple[str, ...] = option(DEFAULT_EXTENSIONS, "Image file extensions, matched in "
                                         "any case.")
    groups: tuple[str, ...] | None = option(None, "Only these groups (paths relative to INPUT).",
                                            metavar="REL", repeatable=True)
    path_column: str | None = option(None, "Listing INPUT (.csv, .jsonl, .parquet) or hf:// INPUT: "
                                     "the column of image paths or bytes [default: the first of "
                                     "path, image, file_name, filename, file, filepath, image_path; "
                                     "hf://: the image feature].")
    label_column: str | None = option(None, "Listing or hf:// INPUT: the label column [default: "
                                      "label; hf://: else the one ClassLabel feature].")
    split_column: str | None = option(None, "Listing or hf:// INPUT: the split column [default: "
                                      "split, where there is one]; groups are split/label.")
    hf_split: str | None = option(None, "hf:// INPUT: only this split of the dataset [default: "
                                  "every split].")
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
                                "folder].", CacheFile())
    overwrite: bool = option(False, "Replace an earlier result in OUTPUT.")
    report: bool = option(True, "Write OUTPUT/report.html after the export.")
    dedup: bool = option(True, "Near-duplicates in a group count once: only the first path is "
                         "eligible. Off, the near-duplicate search is skipped (exact copies are "
                         "still listed).")
    drop_leaks: bool = option(False, "Keep train images that also appear (exact or near) in "
                              "another split out of the selection.")
    drop_outliers: float = option(0.0, "Share of each group made not eligible, the most unusual "
                                  "first by outlier score (manifest.csv's outlier_score); 0: off.",
                                  Interval(0, 1, "left"))
    drop_issues: tuple[str, ...] = option((), "Image quality issues that make an image not "
                                          "eligible (manifest.csv's issues column): "
                                          f"{', '.join(ISSUE_TYPES)}, or all; none by default "
                                          "(flagged and reported only).", IssueNames())
    dup_threshold: float = option(DEFAULT_THRESHOLD, "Embedding cosine similarity from which a pair "
                                  "is checked as a near-duplicate.", Interval(0, 1, "right"))

    def validate(self) -> None:
        """Raise UsageError naming the first bad value and what is allowed."""
        validate({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, CONSTRAINTS)
        self._validate_strategy_params()
        if self.k_min > self.k_max:
            raise UsageError(f"({self.k_min}) must not exceed {mention('k_max')} ({self.k_max})",
                             option="k_min")
        if self.total is not None and self.fraction is not None:
            raise UsageError(f"and {mention('fraction')} exclude each other", option="total")
        if self.balance is not None and self.total is None:
            raise UsageError(f"needs {mention('total')}", option="balance")
        if self.ray_address and self.engine != "ray":
            raise UsageError(f"needs {mention('engine')} ray", option="ray_address")
        if self.device != "auto":
            check_precision(self.precision, self.device, self.backend)  # auto: once resolved
        normalize_extensions(self.extensions)
        self._validate_model_source()

    def _validate_strategy_params(self) -> None:
        """Each one a parameter the strategy declares, with a value its own constraint accepts."""
        params = self.strategy_params
        if not isinstance(params, Mapping):
            raise UsageError(f"must map parameter names to values, got {params!r}",
                             option="strategy_params")
        declared = strategy_parameters(self.strategy) if params else {}
        for name, value in params.items():
            if name not in declared:
                raise UnknownNameError("strategy parameter", name, declared, option="strategy_params",
                                       message=_not_a_parameter(name, self.strategy, declared))
            problem = declared[name].constraint.problem(value)
            if problem is not None:
                raise UsageError(f"{name} {problem} [default: {declared[name].default}]",
                                 option="strategy_params")

    def _validate_model_source(self) -> None:
        """The preprocessing options go with onnx:PATH; --embeddings with the local engine."""
        given = [name for name in ONNX_OPTIONS if getattr(self, name) is not None]
        if given and not self.model.startswith(ONNX_PREFIX):
            raise UsageError("applies to onnx:PATH models only", option=given[0])
        if given and self.engine == "ray":
            raise UsageError(f"is not passed to {mention('engine')} ray's workers: write it in the JSON "
                             "file beside the model", option=given[0])
        if self.embeddings_paths is not None and self.embeddings is None:
            raise UsageError(f"needs {mention('embeddings')}", option="embeddings_paths")
        if self.embeddings is not None and self.engine != "local":
            raise UsageError(f"runs with {mention('engine')} local", option="embeddings")
        if self.missing_vectors == "embed" and self.embeddings is None:
            raise UsageError(f"embed needs {mention('embeddings')}: it embeds the files those "
                             "vectors lack", option="missing_vectors")
        unused = [name for name in _EMBEDDING_ONLY if getattr(self, name) != _default(name)]
        if self.embeddings is not None and self.missing_vectors != "embed" and unused:
            raise UsageError(f"is not used with {mention('embeddings')}, which gives every vector; "
                             f"pass {mention('missing_vectors')} embed to embed the files it lacks "
                             "with it", option=unused[0])
        if self.model.startswith(ONNX_PREFIX):
            self.model_spec()  # the file read and the preprocessing checked before anything runs

    def model_spec(self) -> ModelSpec:
        """The model to embed with: a registered one, or onnx:PATH with these options."""
        from repsample.models import get_model

        if self.model.startswith(ONNX_PREFIX):
            return onnx_model(self.model[len(ONNX_PREFIX):],
                              {name: getattr(self, name) for name in ONNX_OPTIONS})
        return get_model(self.model)

    @property
    def cache_path(self) -> Path:
        """The embedding cache database: ``cache``, or the default in the user's cache folder;
        absolute, so that run.json's record of it holds from any folder."""
        return Path(self.cache or default_cache_path()).absolute()

    def budget(self, valid: int) -> int:
        """Images to keep from a group with this many valid images (before the cap at valid)."""
        if self.fraction is None:
            return self.per_class
        return max(1, int(self.fraction * valid + 0.5))  # round half up

    def budgets(self, valid: Sequence[int]) -> list[int]:
        """Each group's budget: its own, or with total its share by the balance rule."""
        if self.total is None:
            return [self.budget(v) for v in valid]
        from repsample.selection.allocate import allocate

        return [int(b) for b in allocate(valid, self.total, self.balance or "equal")]

    def input_options(self) -> InputOptions:
        """What scanning INPUT needs (repsample.inputs.dispatch)."""
        return InputOptions(self.extensions, self.groups, self.follow_symlinks,
                            Columns(self.path_column, self.label_column, self.split_column),
                            self.hf_split)


def strategy_parameters(strategy: str) -> dict[str, Tunable]:
    """The parameters a strategy lets a user set by name: its selector class's ``tunable``."""
    from repsample.selection.strategies import STRATEGIES  # scikit-learn: loaded only when asked

    return {t.name: t for t in STRATEGIES.get(strategy).tunable}


def parse_strategy_params(pairs: Sequence[str], strategy: str) -> dict[str, Any]:
    """The command line's ``NAME=VALUE`` texts as values of the strategy's parameter types
    (SelectConfig.validate then checks names and values against the strategy's own)."""
    declared = strategy_parameters(strategy) if pairs else {}
    params: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = (part.strip() for part in pair.partition("="))
        if not (equals and name):
            example = next(iter(declared.values()), None)
            raise UsageError(f"takes NAME=VALUE, got {pair!r}"
                             + (f" (e.g. {example.name}={example.default})" if example else ""),
                             option="strategy_params")
        if name in params:
            raise UsageError(f"gives {name} twice; give it once", option="strategy_params")
        params[name] = declared[name].parse(text) if name in declared else text
    return params


def _not_a_parameter(name: str, strategy: str, declared: Mapping[str, Tunable]) -> str:
    where = f"{name!r} is not a parameter of {mention('strategy')} {strategy}"
    if declared:
        return f"{where}; choose one of: {', '.join(declared)}"
    return f"{where}, which takes none; `repsample strategies --parameters` lists those that do"


# What defines a vector (the cache key's parts): with --embeddings (and no --missing-vectors embed)
# a value other than the default would be ignored, so it is refused. Where a model would run
# (--device, --backend) changes no vector and is let pass.
_EMBEDDING_ONLY = ("model", "weights", "precision")


def _default(name: str) -> Any:
    return next(f.default for f in dataclasses.fields(SelectConfig) if f.name == name)


CONSTRAINTS: dict[str, Constraint] = {
    f.name: f.metadata["constraint"] for f in dataclasses.fields(SelectConfig)
    if f.metadata.get("constraint") is not None
}


CHECK_OPTIONS = ("extensions", "groups", "path_column", "label_column", "split_column", "hf_split",
                 "follow_symlinks", "model", "weights", *ONNX_OPTIONS,
                 "embeddings", "embeddings_paths", "missing_vectors", "device", "backend",
                 "precision", "batch_size", "workers", "engine", "ray_address", "cache",
                 "dup_threshold", "overwrite")
"""The options ``check`` shares with ``select``: what to scan, how to embed, the threshold."""


@dataclass(frozen=True)
class ReportOptions:
    """``repsample report``'s options (``repsample.report.build_report``'s keywords)."""

    cache: Path | None = option(None, "Embedding cache for the maps [default: the one the run "
                                "recorded].")
    projection: str = option("auto", "2-D map: auto is UMAP where installed, else PCA.",
                             OneOf(lambda: PROJECTIONS))


@dataclass(frozen=True)
class EvaluateOptions:
    """``repsample evaluate``'s options (``repsample.evaluate_output`` checks the values)."""

    seeds: int = option(5, "Random subsets of the same size to compare with.")
    cache: Path | None = option(None, "Embedding cache database [default: the one run.json names].")
    modes: Path | None = option(None, "CSV file giving images a visual mode: a 'path' column "
                                "(relative to INPUT) and --mode-column; modes covered are then "
                                "scored against random.")
    mode_column: str = option("mode", "The --modes file's column that holds the mode.")
    mode_pattern: str | None = option(None, "Or: a regular expression searched in each path; its "
                                      "first group is the mode (e.g. '/([^/]+)_[0-9]+[.]jpg$').",
                                      metavar="REGEX")


@dataclass(frozen=True)
class VerifyOptions:
    """``repsample verify``'s options."""

    adopt: bool = option(False, "Where OUTPUT matches its manifest exactly, take it over as "
                         "repsample's own (an OUTPUT copied with cp -a, or whose inventory was "
                         "damaged), so that --overwrite may replace it.")
