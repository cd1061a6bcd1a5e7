"""ResNet18 from torchvision with the classifier removed: the original method's 512-d model."""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING

from repsample.errors import missing_extra
from repsample.models.base import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocess
from repsample.models.catalogue import register_model
from repsample.models.loading import build_network, network_error

if TYPE_CHECKING:
    from torch import nn

NAME = "resnet18"


def _architecture() -> nn.Module:
    try:
        from torchvision.models import resnet18
    except ImportError:
        raise missing_extra("torchvision", "torchvision") from None
    return resnet18(weights=None)  # type: ignore[no-any-return]


def _pretrained_state() -> dict[str, object]:
    from torchvision.models import ResNet18_Weights

    try:
        # The weights the original's pretrained=True gave; torch caches them after one download.
        # torch.hub announces the download on stdout: keep the CLI's output to its own lines.
        with contextlib.redirect_stdout(io.StringIO()):
            return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)  # type: ignore[no-any-return]
    except OSError as exc:  # URLError and socket errors are OSErrors
        raise network_error(NAME, exc) from None


def build(weights: str) -> nn.Module:
    net = build_network(_architecture, weights, lambda net: net.load_state_dict(_pretrained_state()),
                        optional_prefix="fc.")
    from torch import nn

    net.fc = nn.Identity()
    return net.eval()


SPEC = register_model(
    ModelSpec(
        name=NAME,
        summary="torchvision ResNet18, ImageNet weights (downloaded once), 512-d; the original method's",
        dim=512,
        # Full decode, as the original did, so its embeddings are reproduced.
        preprocess=Preprocess((224, 224), IMAGENET_MEAN, IMAGENET_STD, draft=False),
        build=build,
        default_weights="torchvision-ResNet18_Weights.IMAGENET1K_V1",
        offline=False,
        extra="torchvision",
    )
)
