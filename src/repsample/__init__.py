"""repsample: a smaller image dataset that is still varied and representative, per class folder.

Public names load on first use (PEP 562), so `repsample --help` and `import repsample.cli`
import neither torch nor scikit-learn.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from repsample._version import __version__

# name -> the module that defines it
_PUBLIC = {
    "allocate": "allocate", "list_allocations": "allocate",
    "SelectConfig": "config",
    "Embedded": "embed", "Embedder": "embed", "embed_images": "embed",
    "RepsampleError": "errors", "UsageError": "errors", "MissingExtra": "errors",
    "EnvironmentProblem": "errors", "UnknownNameError": "errors",
    "EvaluationResult": "evaluate", "evaluate_output": "evaluate",
    "check": "checking", "CheckResult": "checking",
    "ModelSpec": "models", "get_model": "models", "list_models": "models", "register_model": "models",
    "GroupResult": "pipeline", "SelectResult": "pipeline", "select": "pipeline",
    "STRATEGIES": "select", "ClusterSelector": "select", "NeighbourSelector": "select",
    "CentroidSelector": "select", "RandomSelector": "select", "StratifiedSelector": "select",
    "KCenterSelector": "select", "TypicalSelector": "select", "FacilitySelector": "select",
    "HerdingSelector": "select", "CoverSelector": "select", "list_strategies": "select",
    "register_strategy": "select",
}

if TYPE_CHECKING:
    from repsample.allocate import allocate, list_allocations
    from repsample.checking import CheckResult, check
    from repsample.config import SelectConfig
    from repsample.embed import Embedded, Embedder, embed_images
    from repsample.errors import (
        EnvironmentProblem,
        MissingExtra,
        RepsampleError,
        UnknownNameError,
        UsageError,
    )
    from repsample.evaluate import EvaluationResult, evaluate_output
    from repsample.models import ModelSpec, get_model, list_models, register_model
    from repsample.pipeline import GroupResult, SelectResult, select
    from repsample.select import (
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


class _Package(types.ModuleType):
    """`select` is the pipeline's function, though `repsample.select` is also a submodule: importing
    that submodule would otherwise rebind the package attribute to it."""

    @property
    def select(self) -> Any:
        from repsample.pipeline import select

        return select

    @select.setter
    def select(self, value: Any) -> None:
        pass  # the import system binding the submodule; it stays reachable via sys.modules


sys.modules[__name__].__class__ = _Package


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
