"""ONNX's protobuf messages, written without the ``onnx`` package: the few a graph built from
weights needs (model, graph, node, attribute, tensor, value info), byte for byte as ``onnx.helper``
and ``numpy_helper`` serialize them (tests/models hold that). ``import onnx`` costs about half a
second (its ml_dtypes extension), a sixth of a new user's first run outside the model; ONNX
Runtime checks the file when it loads it.

Field numbers are onnx.proto's (proto2: repeated numbers unpacked; fields in number order, as
protobuf writes them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLOAT = 1  # TensorProto.FLOAT
_VARINT, _BYTES = 0, 2
_INT, _INTS = 2, 7  # AttributeProto.AttributeType


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # a negative int64 is its two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _number(field: int, value: int) -> bytes:
    return _varint(field << 3 | _VARINT) + _varint(value)


def _named(field: int, name: str) -> bytes:
    """An optional name: set only when given, as onnx.helper leaves an empty one unset."""
    return _bytes(field, name) if name else b""


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | _BYTES) + _varint(len(data)) + data


def tensor(name: str, array: np.ndarray) -> bytes:
    """A float32 initializer, its data raw (numpy_helper.from_array's form)."""
    data = np.asarray(array, dtype="<f4")  # tobytes is C order; ascontiguousarray would make a scalar 1-d
    return (b"".join(_number(1, d) for d in data.shape) + _number(2, FLOAT) + _named(8, name)
            + _bytes(9, data.tobytes()))


def _attribute(name: str, value: int | Sequence[int]) -> bytes:
    if isinstance(value, int):
        return _bytes(1, name) + _number(3, value) + _number(20, _INT)
    return _bytes(1, name) + b"".join(_number(8, v) for v in value) + _number(20, _INTS)


def node(op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str,
         **attributes: int | Sequence[int]) -> bytes:
    """A node; its attributes sorted by name, as ``helper.make_node`` orders them."""
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _named(3, name) + _bytes(4, op_type)
            + b"".join(_bytes(5, _attribute(k, v)) for k, v in sorted(attributes.items())))


def value_info(name: str, shape: Sequence[int | str]) -> bytes:
    """A float32 tensor's name and shape (a str: a named, free dimension)."""
    dims = b"".join(_bytes(1, _number(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _number(1, FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def graph(nodes: Sequence[bytes], name: str, inputs: Sequence[bytes], outputs: Sequence[bytes],
          initializers: Sequence[bytes]) -> bytes:
    return b"".join([*(_bytes(1, n) for n in nodes), _bytes(2, name),
                     *(_bytes(5, t) for t in initializers), *(_bytes(11, i) for i in inputs),
                     *(_bytes(12, o) for o in outputs)])


def model(body: bytes, opset: int, ir_version: int, producer: str) -> bytes:
    """A model of one graph, importing the default domain's operators at ``opset``."""
    return (_number(1, ir_version) + _bytes(2, producer) + _bytes(7, body)
            + _bytes(8, _bytes(1, "") + _number(2, opset)))
