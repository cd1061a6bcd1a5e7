"""The models by name: the built-in ones, those other packages declare, and ``onnx:PATH``."""

from __future__ import annotations

import functools
import logging

from repsample.models.base import ONNX_PREFIX, ModelSpec
from repsample.models.onnx_file import onnx_model
from repsample.registry import Registry

logger = logging.getLogger(__name__)

ENTRY_POINTS = "repsample.models"  # the group under which other packages register models


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.register(spec.name, spec)


def get_model(name: str) -> ModelSpec:
    """A registered model (built in, or from a package's ``repsample.models`` entry point),
    or ``onnx:PATH``: a user's ONNX encoder, preprocessed as the JSON file beside it says."""
    if name.startswith(ONNX_PREFIX):
        return onnx_model(name[len(ONNX_PREFIX):])
    load_plugins()
    return MODELS.get(name)


def list_models(pattern: str = "*") -> list[str]:
    load_plugins()
    return MODELS.names(pattern)


@functools.cache  # the group is read once
def load_plugins() -> None:
    """Register the models that installed packages declare in the ``repsample.models``
    entry-point group, once, on first use (not at import). An entry point names a ModelSpec, or
    a callable returning one, whose name is the entry point's. A plugin that fails to load is
    a warning naming it: it must not take the built-in models down with it."""
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS):
        try:
            found = point.load()
            spec = found if isinstance(found, ModelSpec) else found()
        except Exception as exc:  # a third party's import or factory can raise anything
            logger.warning("model plugin %r (%s) not loaded: %s: %s", point.name, point.value,
                           type(exc).__name__, exc)
            continue
        if not isinstance(spec, ModelSpec) or spec.name != point.name:
            logger.warning("model plugin %r (%s) not loaded: it must give a ModelSpec named %r",
                           point.name, point.value, point.name)
        elif point.name not in MODELS:
            register_model(spec)
        elif MODELS.get(point.name) is not spec:  # the module registered it itself: same object
            logger.warning("model plugin %r (%s) not loaded: the name is taken", point.name,
                           point.value)
