"""EfficientNet-Lite0's embedding as an ONNX graph, built from its state dict without torch.

The graph computes what ``efficientnet.build("default")`` computes in eval mode: the mean over
space of ``EfficientNet.extract_features`` (efficientnet_lite_pytorch's model at 224 x 224),
with every BatchNorm folded into the convolution before it. Padding is TensorFlow's static
"same" padding as the package computes it for a 224-pixel input (one more row and column
after than before where a stride-2 convolution needs an odd total). The file is written by
models/onnx_wire.py, without importing ``onnx`` (half a second of a first run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repsample.models import onnx_wire as wire
from repsample.models.base import ONNX_OPSET, replacing

OPSET = ONNX_OPSET
IR_VERSION = 8  # the IR of opset 17, so that older ONNX Runtimes load the file
SIZE = 224  # the input the package's static padding is computed for
BN_EPS = 1e-3  # efficientnet_lite: batch_norm_epsilon
HEAD = 1280  # Lite fixes the head width (fix_head_stem)
INPUT, OUTPUT = "pixels", "embedding"


@dataclass(frozen=True)
class Stage:
    """One row of Lite's block table: repeats, kernel, stride, expansion, channels in and out."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int


# efficientnet_lite_pytorch.utils.efficientnet_lite's blocks_args; lite0 scales neither width
# nor depth (coefficients 1.0).
STAGES = (
    Stage(1, 3, 1, 1, 32, 16), Stage(2, 3, 2, 6, 16, 24), Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80), Stage(3, 5, 1, 6, 80, 112), Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class _Graph:
    """Nodes and initializers, added in order; each tensor named after the layer making it."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self.state = state
        self.nodes: list[bytes] = []
        self.weights: list[bytes] = [
            wire.tensor("relu6_min", np.array(0.0, np.float32)),
            wire.tensor("relu6_max", np.array(6.0, np.float32)),
        ]

    def conv_bn(self, x: str, conv: str, bn: str, *, size: int, stride: int = 1,
                groups: int = 1, relu6: bool = True) -> str:
        """conv -> BatchNorm (folded) -> ReLU6 (optional), with the package's same padding."""
        weight = np.asarray(self.state[f"{conv}.weight"], np.float64)
        scale = np.asarray(self.state[f"{bn}.weight"], np.float64) / np.sqrt(
            np.asarray(self.state[f"{bn}.running_var"], np.float64) + BN_EPS)
        bias = np.asarray(self.state[f"{bn}.bias"], np.float64) - np.asarray(
            self.state[f"{bn}.running_mean"], np.float64) * scale
        folded = (weight * scale[:, None, None, None]).astype(np.float32)
        self.weights += [wire.tensor(f"{conv}.weight", folded),
                         wire.tensor(f"{conv}.bias", bias.astype(np.float32))]
        kernel = folded.shape[-1]
        self.nodes.append(wire.node(
            "Conv", [x, f"{conv}.weight", f"{conv}.bias"], [conv], name=conv,
            kernel_shape=[kernel, kernel], strides=[stride, stride], group=groups,
            pads=same_pads(size, kernel, stride),
        ))
        if not relu6:
            return conv
        self.nodes.append(wire.node(
            "Clip", [conv, "relu6_min", "relu6_max"], [f"{conv}.relu6"], name=f"{conv}.relu6"))
        return f"{conv}.relu6"

    def block(self, x: str, index: int, stage: Stage, cin: int, stride: int, size: int) -> str:
        """MBConvBlock in eval mode: expand, depthwise, project, skip when shapes allow."""
        name = f"_blocks.{index}"
        h = x
        if stage.expand != 1:
            h = self.conv_bn(h, f"{name}._expand_conv", f"{name}._bn0", size=size)
        h = self.conv_bn(h, f"{name}._depthwise_conv", f"{name}._bn1", size=size, stride=stride,
                         groups=cin * stage.expand)
        h = self.conv_bn(h, f"{name}._project_conv", f"{name}._bn2",
                         size=math.ceil(size / stride), relu6=False)
        if stride != 1 or cin != stage.cout:
            return h
        self.nodes.append(wire.node("Add", [h, x], [f"{name}.skip"], name=f"{name}.skip"))
        return f"{name}.skip"


def same_pads(size: int, kernel: int, stride: int) -> list[int]:
    """Conv2dStaticSamePadding's pads for a square input, as ONNX's [top, left, bottom, right]."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    before = total // 2
    return [before, before, total - before, total - before]


def build_graph(state: Mapping[str, np.ndarray]) -> bytes:
    """The embedding graph, serialized: ``pixels`` (N, 3, 224, 224) float32 -> ``embedding``
    (N, 1280).

    state: EfficientNet-Lite0's state dict as arrays (repsample.models.pth.read_state_dict)."""
    graph = _Graph(state)
    x = graph.conv_bn(INPUT, "_conv_stem", "_bn0", size=SIZE, stride=2)
    size, index = math.ceil(SIZE / 2), 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            first = repeat == 0
            cin, stride = (stage.cin, stage.stride) if first else (stage.cout, 1)
            x = graph.block(x, index, stage, cin, stride, size)
            size, index = math.ceil(size / stride), index + 1
    x = graph.conv_bn(x, "_conv_head", "_bn1", size=size)
    graph.nodes.append(wire.node("ReduceMean", [x], [OUTPUT], name="mean", axes=[2, 3], keepdims=0))
    body = wire.graph(graph.nodes, "efficientnet-lite0",
                      [wire.value_info(INPUT, ["batch", 3, SIZE, SIZE])],
                      [wire.value_info(OUTPUT, ["batch", HEAD])], graph.weights)
    return wire.model(body, OPSET, IR_VERSION, "repsample")


def write_graph(state: Mapping[str, np.ndarray], path: Path) -> None:
    """Build the graph and write it to ``path`` atomically: a killed write leaves no model."""
    data = build_graph(state)
    with replacing(path) as tmp, open(tmp, "wb") as out:
        out.write(data)
