"""What makes a selector a scikit-learn estimator, without importing scikit-learn (0.6 s of
every run): parameters read from ``__init__``'s signature (``get_params``, ``set_params``, so
``sklearn.base.clone`` works), scikit-learn's repr of the changed ones, its default tags, and
its input check for the matrices a run passes (clean float rows), scikit-learn's own for the rest.
tests/selection/test_selector_api.py runs scikit-learn's estimator checks on every strategy.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


class Estimator:
    """Base class: the parameters are ``__init__``'s, stored under their own names."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The parameters' names, sorted (scikit-learn's order)."""
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """{name: value} of every parameter (a selector's are plain values: deep changes nothing)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Set parameters by name; an unknown name is scikit-learn's ValueError. Returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self}. "
                                 f"Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """scikit-learn's: the parameters that differ from their defaults, by name, on one line."""
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if repr(value) != repr(defaults.get(name, inspect.Parameter.empty))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's default tags (asked by scikit-learn only, so imported then)."""
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)


def check_rows(X: Any) -> np.ndarray:
    """X as scikit-learn's ``check_array(X, dtype=(np.float64, np.float32))`` gives it: a 2-D float
    ndarray with finite values and at least one row and one column is returned as it is; anything
    else (lists, other dtypes, sparse matrices, NaN, empty or 1-D input) goes through scikit-learn's
    check for its conversions and messages."""
    if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in (np.float32, np.float64)
            and X.shape[0] > 0 and X.shape[1] > 0 and np.isfinite(X).all()):
        return X
    from sklearn.utils import check_array

    checked: np.ndarray = check_array(X, dtype=(np.float64, np.float32))
    return checked


def random_state(seed: int | None) -> np.random.RandomState:
    """scikit-learn's ``check_random_state`` for a validated seed: an int seeds a new generator,
    None is numpy's global one."""
    return np.random.RandomState(seed) if seed is not None else np.random.mtrand._rand
