"""Embedding models, registered by name; importing this package registers the built-in ones."""

from repsample.models import efficientnet, resnet  # noqa: F401  (registration)
from repsample.models.base import ModelSpec, get_model, list_models, model_key, register_model

__all__ = ["ModelSpec", "get_model", "list_models", "model_key", "register_model"]
