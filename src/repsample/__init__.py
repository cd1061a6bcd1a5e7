"""repsample: a smaller image dataset that is still varied and representative, per class folder."""

__version__ = "0.1.0"

from repsample.allocate import allocate, list_allocations
from repsample.config import SelectConfig
from repsample.embed import Embedded, Embedder, embed_images
from repsample.errors import RepsampleError
from repsample.evaluate import evaluate_output
from repsample.hygiene.run import check
from repsample.models import ModelSpec, get_model, list_models, register_model
from repsample.pipeline import GroupResult, SelectResult, select
from repsample.select import (
    STRATEGIES,
    CentroidSelector,
    ClusterSelector,
    list_strategies,
)

__all__ = [
    "STRATEGIES",
    "CentroidSelector",
    "ClusterSelector",
    "Embedded",
    "Embedder",
    "GroupResult",
    "ModelSpec",
    "RepsampleError",
    "SelectConfig",
    "SelectResult",
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
    "select",
]
