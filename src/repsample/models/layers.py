"""Small modules shared by model wrappers."""

from __future__ import annotations

import torch
from torch import nn


class FeatureMapMean(nn.Module):
    """A backbone's last feature map averaged over space: one vector per image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net.extract_features(x)  # type: ignore[operator]
        return features.mean((2, 3))
