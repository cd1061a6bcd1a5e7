"""Reading a PyTorch-saved state dict into numpy arrays, without torch.

Both of torch.save's formats are read: the legacy one (pickles, then each storage's raw bytes
after an 8-byte element count) and the zip one (``<name>/data.pkl`` beside ``<name>/data/<key>``).
The pickle goes through an unpickler that knows only what a state dict holds (an OrderedDict of
tensors) and refuses every other global before anything is called, so a file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from repsample.errors import RepsampleError

_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION

# torch's legacy storage classes, by the element type they hold (bfloat16 has no numpy type).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` and its kind: only its element type matters."""

    dtype: np.dtype[Any]


@dataclass
class _Storage:
    """A storage named in the pickle; its bytes arrive later (legacy) or from the archive (zip)."""

    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _Tensor:
    """A tensor as the pickle describes it, made an array once every storage is read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise _Unreadable("a tensor's storage has no data")
        count = int(np.prod(self.size))
        if count == 0:
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if self.offset < 0 or last >= len(flat) or min(self.stride, default=0) < 0:
            raise _Unreadable("a tensor reaches outside its storage")
        base = flat[self.offset:]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            base, self.size, tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view)  # a copy: contiguous, owning its memory


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: object) -> _Tensor:
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: _Tensor, *_: object) -> _Tensor:
    return data


def _storage_type(name: str) -> _StorageType:
    return _StorageType(np.dtype(_STORAGE_DTYPES[name]))


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unreadable(Exception):
    """What makes a file no readable state dict; read_state_dict says it in one line."""


class _Unpickler(pickle.Unpickler):
    """Knows only a state dict's globals; storages come from ``resolve``."""

    def __init__(self, file: IO[bytes], resolve: Callable[[tuple[Any, ...]], _Storage]) -> None:
        super().__init__(file)
        self._resolve = resolve

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _storage_type(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise _Unreadable(f"it refers to {module}.{name}, which a state dict never needs")

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage":
            raise _Unreadable(f"unknown persistent id {pid!r:.60}")
        return self._resolve(pid[1:])


def _text(value: object) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of the state dict saved at ``path`` (either torch.save format), by name.

    Raises RepsampleError, in one line, for a file that is not a state dict, is truncated, or
    names anything besides tensors (it is refused before any of it runs)."""
    file = Path(path)
    try:
        if zipfile.is_zipfile(file):
            state = _read_zip(file)
        else:
            with file.open("rb") as stream:
                state = _read_legacy(stream)
        return _arrays(state)
    except OSError as exc:
        raise RepsampleError(f"cannot read weights file {str(file)!r}: {exc.strerror or exc}") from None
    except (_Unreadable, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, struct.error, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RepsampleError(f"weights file {str(file)!r} is not a readable state dict: {reason}") from None


def _arrays(state: object) -> dict[str, np.ndarray]:
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise _Unreadable(f"it holds a {type(state).__name__}, not a state dict")
    bad = [key for key, value in state.items() if not isinstance(value, _Tensor)]
    if bad:
        raise _Unreadable(f"entry {bad[0]!r} is not a tensor")
    return {str(key): value.array() for key, value in state.items()}


def _read_legacy(stream: IO[bytes]) -> object:
    # Even the header pickles go through the restricted unpickler: any pickle can call code.
    if _Unpickler(stream, _refuse).load() != _MAGIC:
        raise _Unreadable("it is not a file written by torch.save")
    if _Unpickler(stream, _refuse).load() != _PROTOCOL:
        raise _Unreadable("unknown torch.save protocol version")
    info = _Unpickler(stream, _refuse).load()
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise _Unreadable("it was saved on a big-endian machine")
    storages: dict[str, _Storage] = {}

    def resolve(pid: tuple[Any, ...]) -> _Storage:
        kind, key, _location, numel, view = pid
        if view is not None:
            raise _Unreadable("storage views (files from torch < 0.4) are not supported")
        return storages.setdefault(_text(key), _Storage(kind.dtype, int(numel)))

    state = _Unpickler(stream, resolve).load()
    for key in _Unpickler(stream, _refuse).load():
        storage = storages[_text(key)]
        (numel,) = struct.unpack("<q", _exactly(stream, 8))
        if numel != storage.numel:
            raise _Unreadable(f"storage {key!r} holds {numel} elements, the pickle says {storage.numel}")
        storage.data = np.frombuffer(_exactly(stream, numel * storage.dtype.itemsize), storage.dtype)
    return state


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _Unreadable("the file is truncated")
    return data


def _refuse(pid: tuple[Any, ...]) -> _Storage:
    raise _Unreadable("a storage where none belongs")


def _read_zip(file: Path) -> object:
    with zipfile.ZipFile(file) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise _Unreadable("the archive has no single data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order) != b"little":
            raise _Unreadable("it was saved on a big-endian machine")

        storages: dict[str, _Storage] = {}

        def resolve(pid: tuple[Any, ...]) -> _Storage:
            kind, key, _location, numel = pid
            if _text(key) not in storages:
                raw = archive.read(f"{prefix}data/{_text(key)}")
                data = np.frombuffer(raw, kind.dtype)
                if len(data) != int(numel):
                    raise _Unreadable("the file is truncated")
                storages[_text(key)] = _Storage(kind.dtype, int(numel), data)
            return storages[_text(key)]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), resolve).load()
