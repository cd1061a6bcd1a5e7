"""Embedding models, registered by name; importing this package registers the built-in ones.

Another package adds a model through the ``repsample.models`` entry-point group, naming a
ModelSpec (what to build, how to preprocess) or a function returning one.
"""

from repsample.models import efficientnet, resnet  # noqa: F401  (registration)
from repsample.models.base import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocess, model_key
from repsample.models.catalogue import get_model, list_models, register_model

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ModelSpec", "Preprocess", "get_model", "list_models",
           "model_key", "register_model"]
