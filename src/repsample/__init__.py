"""repsample: a smaller image dataset that is still varied and representative, per class folder.

Public names load on first use (PEP 562), so `repsample --help` and `import repsample.cli`
import neither torch nor scikit-learn.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import TYPE_CHECKING, Any

from repsample._version import __version__

_FIRST_IMPORT = time.perf_counter()  # run.json's "start" counts from here (progress.since_import)

# name -> the module that defines it
_PUBLIC = {
    "allocate": "selection.allocate", "list_allocations": "selection.allocate",
    "SelectConfig": "config",
    "Embedded": "embedding.embed", "Embedder": "embedding.embed", "embed_images": "embedding.embed",
    "RepsampleError": "errors", "UsageError": "errors", "MissingExtra": "errors",
    "EnvironmentProblem": "errors", "UnknownNameError": "errors",
    "EvaluationResult": "evaluate", "evaluate_output": "evaluate",
    "check": "checking", "CheckResult": "checking",
    "ModelSpec": "models", "get_model": "models", "list_models": "models", "register_model": "models",
    "GroupResult": "output.outcome", "SelectResult": "pipeline", "select": "pipeline",
    **dict.fromkeys((
        "STRATEGIES", "ClusterSelector", "NeighbourSelector", "CentroidSelector", "RandomSelector",
        "StratifiedSelector", "KCenterSelector", "TypicalSelector", "FacilitySelector",
        "HerdingSelector", "CoverSelector", "list_strategies", "register_strategy",
    ), "selection.strategies"),
}

if TYPE_CHECKING:
    from repsample.checking import CheckResult, check
    from repsample.config import SelectConfig
    from repsample.embedding.embed import Embedded, Embedder, embed_images
    from repsample.errors import (
        EnvironmentProblem,
        MissingExtra,
        RepsampleError,
        UnknownNameError,
        UsageError,
    )
    from repsample.evaluate import EvaluationResult, evaluate_output
    from repsample.models import ModelSpec, get_model, list_models, register_model
    from repsample.output.outcome import GroupResult
    from repsample.pipeline import SelectResult, select
    from repsample.selection.allocate import allocate, list_allocations
    from repsample.selection.strategies import (
        STRATEGIES,
        CentroidSelector,
        ClusterSelector,
        CoverSelector,
        FacilitySelector,
        HerdingSelector,
        KCenterSelector,
        NeighbourSelector,
        RandomSelector,
        StratifiedSelector,
        TypicalSelector,
        list_strategies,
        register_strategy,
    )


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'repsample' has no attribute {name!r}")
    value = getattr(import_module(f"repsample.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value

__all__ = [
    "STRATEGIES",
    "CentroidSelector",
    "CheckResult",
    "ClusterSelector",
    "CoverSelector",
    "Embedded",
    "Embedder",
    "EnvironmentProblem",
    "EvaluationResult",
    "FacilitySelector",
    "GroupResult",
    "HerdingSelector",
    "KCenterSelector",
    "MissingExtra",
    "ModelSpec",
    "NeighbourSelector",
    "RandomSelector",
    "RepsampleError",
    "SelectConfig",
    "SelectResult",
    "StratifiedSelector",
    "TypicalSelector",
    "UnknownNameError",
    "UsageError",
    "__version__",
    "allocate",
    "check",
    "embed_images",
    "evaluate_output",
    "get_model",
    "list_allocations",
    "list_models",
    "list_strategies",
    "register_model",
    "register_strategy",
    "select",
]
