"""Loading weights safely, with errors that say what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from repsample.errors import RepsampleError, UsageError, mention

if TYPE_CHECKING:
    from torch import nn


def load_state_dict_file(model: nn.Module, path: str, *, optional_prefix: str | None = None) -> None:
    """Load a local state_dict with ``weights_only`` so a file cannot run code.

    Keys under optional_prefix (a classifier head the embedding does not use) may be absent.
    """
    import torch

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"file {path!r} not found; choose default, random or an existing file",
                         option="weights")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RepsampleError(f"cannot load weights file {path!r} as a state_dict: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise RepsampleError(f"weights file {path!r} holds a {type(state).__name__}, not a state_dict")
    try:
        result = model.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise RepsampleError(f"weights file {path!r} does not fit this model: {first}") from None
    missing = [k for k in result.missing_keys if not (optional_prefix and k.startswith(optional_prefix))]
    if missing or result.unexpected_keys:
        bad = (missing or result.unexpected_keys)[:3]
        what = "lacks" if missing else "has unexpected"
        raise RepsampleError(f"weights file {path!r} does not fit this model: it {what} keys {bad}")


def build_network(architecture: Callable[[], nn.Module], weights: str,
                  load_default: Callable[[nn.Module], object], *,
                  optional_prefix: str | None = None) -> nn.Module:
    """The network with its weights: ``random`` (seeded, build_random), ``default`` (load_default)
    or a local state_dict file (load_state_dict_file)."""
    if weights == "random":
        return build_random(architecture)
    net = architecture()
    if weights == "default":
        load_default(net)
    else:
        load_state_dict_file(net, weights, optional_prefix=optional_prefix)
    return net


def build_random(factory: Callable[[], nn.Module]) -> nn.Module:
    """An untrained model, identical on every call, without touching the global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return factory()


def network_error(model: str, exc: BaseException) -> RepsampleError:
    return RepsampleError(
        f"cannot download the pretrained weights for {model!r} ({type(exc).__name__}: {exc}); "
        f"connect to the network once (they are cached), pass {mention('weights')} PATH to a local "
        f"state_dict, or use {mention('model')} efficientnet-lite0, which works offline"
    )
