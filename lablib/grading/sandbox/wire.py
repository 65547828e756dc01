"""The wire between the trusted grader and the sandboxed worker: framing, values, shared arrays.

Nothing here ever unpickles. A message is a JSON header plus raw byte buffers:

    <u32 header length> <u32 number of buffers> header  (<u64 length> bytes)*

Values are JSON scalars (None, bool, int, float, str) or tagged objects:

    {"$": "list" | "tuple", "v": [...]}         {"$": "dict", "k": [...], "v": [...]}
    {"$": "nd", "d": "<f8", "s": [2, 3], "b": 0, "h": "w4"}   an array: dtype, shape, buffer, handle
    {"$": "sc", "d": "<f8", "b": 1}             a NumPy scalar
    {"$": "dtype" | "ntype", "v": "float32"}    np.dtype("float32") / the type np.float32
    {"$": "rng", "bg": "PCG64", "st": {...}, "h": "t2"}   a numpy.random.Generator, by its state
    {"$": "ref", "id": 7, "n": "Linear", "k": "obj"}      an object that stays in the worker
    {"$": "slice", "v": [a, b, c]}  {"$": "ellipsis"}  {"$": "cx", "v": [re, im]}

`decode` on the trusted side accepts only these shapes: arrays of a numeric dtype (bool, int, uint,
float, complex), rebuilt from bytes + shape + dtype with a size limit, never object arrays or
subclasses; containers with a depth and length limit; strings with a length limit.

**Shared arrays.** An array that crosses the wire gets a handle; both sides remember their own
object for the handle and a snapshot of its bytes. Before a side sends any message it sends the
current bytes of every remembered array that changed since the last crossing (`Tracker.changes`),
and the receiver writes them into its own object in place (`Tracker.apply`). So an array behaves as
if shared at call boundaries: a forward that mutates its input is seen by the check, a numeric
gradient that perturbs `W.data` in place on the trusted side is seen by the worker's forward, and an
array that comes back is the same object that was sent (`p.grad is preset` holds). Generators are
shared the same way, by their state.
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import sys
import time
import weakref
from typing import Any, Callable

import numpy as np

__all__ = ["WireError", "Tracker", "encode", "decode", "send", "receive", "MAX_ARRAY_BYTES"]

#: Largest array accepted from the other side, in bytes.
MAX_ARRAY_BYTES = 64 * 1024 * 1024
#: Largest message, in bytes (header and buffers together).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Deepest nesting of lists/tuples/dicts accepted.
MAX_DEPTH = 32
#: Most items in one list/tuple/dict accepted.
MAX_ITEMS = 1_000_000
#: Longest string accepted (a longer one is cut, not refused).
MAX_STRING = 100_000
#: Array dtype kinds that may cross: bool, signed/unsigned int, float, complex.
NUMERIC_KINDS = "biufc"
#: Bit generators a Generator may be rebuilt from.
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

_HEAD = struct.Struct("<II")
_LEN = struct.Struct("<Q")


class WireError(Exception):
    """The other side sent something that is not a valid message or value."""


# --------------------------------------------------------------------------------------------------
# framing


def _write_all(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out writing to the other side")
            _, ready, _ = select.select([], [fd], [], left)
            if not ready:
                continue
        written = os.write(fd, view[:1 << 20])
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for the other side")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send(fd: int, header: Any, buffers: list[bytes], deadline: float | None = None) -> None:
    """Write one message (a JSON-able header and its buffers)."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    parts = [_HEAD.pack(len(head), len(buffers)), head]
    for buf in buffers:
        parts += [_LEN.pack(len(buf)), buf]
    _write_all(fd, b"".join(parts), deadline)


def receive(fd: int, deadline: float | None = None) -> tuple[Any, list[bytes]]:
    """Read one message; raises WireError if it is malformed or too large, EOFError at the end."""
    head_len, nbuf = _HEAD.unpack(_read_exact(fd, _HEAD.size, deadline))
    if head_len > MAX_MESSAGE_BYTES or nbuf > MAX_ITEMS:
        raise WireError(f"message too large ({head_len} byte header, {nbuf} buffers)")
    try:
        header = json.loads(_read_exact(fd, head_len, deadline))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise WireError(f"malformed message header ({err})") from None
    buffers, total = [], head_len
    for _ in range(nbuf):
        (size,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
        total += size
        if total > MAX_MESSAGE_BYTES:
            raise WireError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
        buffers.append(_read_exact(fd, size, deadline))
    return header, buffers


# --------------------------------------------------------------------------------------------------
# shared arrays


def _snapshot(arr: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    return arr.dtype.str, arr.shape, arr.tobytes()


class Tracker:
    """Arrays (and Generators) shared with the other side, by handle; see the module docstring.

    prefix: "t" on the trusted side, "w" in the worker, so that both can make new handles.
    An array received from the other side is built over a buffer the tracker keeps, so that when
    the array is freed after an in-place change (`model.w.data[...] = v`, a numeric-gradient probe
    restoring the last entry), its final bytes are still sent with the next message.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._next = 0
        # handle -> (weak reference, snapshot (dtype, shape, bytes), own buffer or None)
        self._arrays: dict[str, tuple[weakref.ref, tuple, Any]] = {}
        self._by_id: dict[int, str] = {}
        self._dying: list[tuple[str, np.ndarray]] = []
        self._rngs: dict[str, tuple[Any, Any]] = {}  # Generators cannot be weakly referenced

    def _new_handle(self) -> str:
        self._next += 1
        return f"{self.prefix}{self._next}"

    def handle_of(self, arr: np.ndarray) -> str:
        """The handle of `arr`, remembering it (and its current bytes) if it is new."""
        handle = self._by_id.get(id(arr))
        if handle is not None and handle in self._arrays:
            ref, _, buf = self._arrays[handle]
            if ref() is arr:
                self._arrays[handle] = (ref, _snapshot(arr), buf)
                return handle
        handle = self._new_handle()
        self._remember(handle, arr, None)
        return handle

    def _remember(self, handle: str, arr: np.ndarray, buf: Any) -> None:
        key = id(arr)

        def forget(_: Any, handle: str = handle, key: int = key) -> None:
            entry = self._arrays.pop(handle, None)
            if self._by_id.get(key) == handle:
                del self._by_id[key]
            if entry is not None and entry[2] is not None:
                dtype, shape, before = entry[1]
                last = bytes(entry[2])
                if last != before:  # changed in place, then freed: its last bytes still go over
                    self._dying.append((handle, np.frombuffer(last, dtype=dtype).reshape(shape)))

        self._arrays[handle] = (weakref.ref(arr, forget), _snapshot(arr), buf)
        self._by_id[key] = handle

    def local(self, handle: str, arr: np.ndarray) -> np.ndarray:
        """The object standing for `handle` here, now holding `arr`'s values (for an array received)."""
        entry = self._arrays.get(handle)
        mine = entry[0]() if entry is not None else None
        if mine is not None and mine.shape == arr.shape and mine.dtype == arr.dtype:
            if mine.tobytes() != arr.tobytes():
                try:
                    mine[...] = arr
                except ValueError:  # read-only here: keep ours
                    pass
            self._arrays[handle] = (entry[0], _snapshot(mine), entry[2])
            return mine
        if arr.size == 0:
            return arr
        buf = bytearray(np.ascontiguousarray(arr).tobytes())
        mine = np.frombuffer(buf, dtype=arr.dtype).reshape(arr.shape)
        self._remember(handle, mine, buf)
        return mine

    def rng_handle(self, rng: Any) -> str:
        for handle, (obj, _) in self._rngs.items():
            if obj is rng:
                self._rngs[handle] = (rng, rng.bit_generator.state)
                return handle
        handle = self._new_handle()
        self._rngs[handle] = (rng, rng.bit_generator.state)
        return handle

    def local_rng(self, handle: str, bit_generator: str, state: dict) -> Any:
        obj = self._rngs.get(handle, (None, None))[0]
        if obj is None:
            obj = np.random.Generator(getattr(np.random, bit_generator)())
        obj.bit_generator.state = state
        self._rngs[handle] = (obj, obj.bit_generator.state)
        return obj

    def changes(self) -> list[tuple[str, Any]]:
        """(handle, new value) for every shared array or Generator changed here since it last crossed."""
        out: list[tuple[str, Any]] = []
        dying, self._dying = self._dying, []
        live = set()
        # a copy made in one C call: an array freed by the garbage collector while the loop runs
        # drops itself from _arrays (its weakref callback) without breaking the iteration
        for handle, (ref, snap, buf) in list(self._arrays.copy().items()):
            arr = ref()
            if arr is None:
                continue
            live.add(handle)
            now = _snapshot(arr)
            if now != snap:
                self._arrays[handle] = (ref, now, buf)
                out.append((handle, arr))
        out += [(handle, arr) for handle, arr in dying if handle not in live]
        for handle, (rng, state) in list(self._rngs.items()):
            now = rng.bit_generator.state
            if not _same_state(now, state):
                self._rngs[handle] = (rng, now)
                out.append((handle, rng))
            elif sys.getrefcount(rng) <= 3:  # only this table holds it (plus `rng` and the call): forget it
                del self._rngs[handle]
        return out


def _same_state(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # arrays inside (MT19937): compare piece by piece
        pass
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


# --------------------------------------------------------------------------------------------------
# values


def _plain_array(value: np.ndarray) -> np.ndarray:
    """An exact base-class ndarray with value's bytes (a subclass's methods are never called)."""
    return np.ndarray.view(value, np.ndarray) if type(value) is not np.ndarray else value


def encode(value: Any, buffers: list[bytes], tracker: Tracker, ref: Callable[[Any], dict],
           depth: int = 0) -> Any:
    """A JSON-able description of `value`; objects that cannot cross by value go through `ref`."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH} levels cannot be sent")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int or kind is float:
        return value
    if isinstance(value, bool):  # bool subclasses cannot exist; kept for clarity
        return bool(value)
    if isinstance(value, int) and not isinstance(value, np.integer):
        return int.__index__(value) if kind is not int else value
    if isinstance(value, float) and not isinstance(value, np.floating):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex) and not isinstance(value, np.complexfloating):
        return {"$": "cx", "v": [value.real, value.imag]}
    if isinstance(value, (list, tuple)) and kind in (list, tuple):
        if len(value) > MAX_ITEMS:
            raise WireError(f"a {kind.__name__} of more than {MAX_ITEMS} items cannot be sent")
        return {"$": kind.__name__, "v": [encode(v, buffers, tracker, ref, depth + 1) for v in value]}
    if kind is dict:
        if len(value) > MAX_ITEMS:
            raise WireError(f"a dict of more than {MAX_ITEMS} items cannot be sent")
        return {"$": "dict", "k": [encode(k, buffers, tracker, ref, depth + 1) for k in value.keys()],
                "v": [encode(v, buffers, tracker, ref, depth + 1) for v in value.values()]}
    if isinstance(value, np.ndarray):
        arr = _plain_array(value)
        if arr.dtype.kind not in NUMERIC_KINDS or arr.dtype.fields is not None:
            raise TypeError(f"an array of dtype {arr.dtype} cannot be graded: only numeric arrays cross "
                            "to the grader")
        if arr.nbytes > MAX_ARRAY_BYTES:
            raise WireError(f"an array of {arr.nbytes} bytes is larger than the limit of {MAX_ARRAY_BYTES}")
        handle = tracker.handle_of(value) if type(value) is np.ndarray else None
        buffers.append(np.ascontiguousarray(arr).tobytes())
        return {"$": "nd", "d": arr.dtype.str, "s": list(arr.shape), "b": len(buffers) - 1, "h": handle}
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        arr = np.asarray(value)
        if arr.dtype.kind not in NUMERIC_KINDS:
            return ref(value)
        buffers.append(arr.tobytes())
        return {"$": "sc", "d": arr.dtype.str, "b": len(buffers) - 1}
    if kind is np.dtype or isinstance(value, np.dtype):
        if value.kind in NUMERIC_KINDS and value.fields is None:
            return {"$": "dtype", "v": value.str}
        return ref(value)
    if isinstance(value, type) and issubclass(value, np.generic) and value.__module__ == "numpy":
        try:
            dt = np.dtype(value)
            if dt.kind in NUMERIC_KINDS:
                return {"$": "ntype", "v": dt.str}
        except TypeError:
            pass
        return ref(value)
    if kind is np.random.Generator:
        name = type(value.bit_generator).__name__
        if name in BIT_GENERATORS:
            return {"$": "rng", "bg": name, "h": tracker.rng_handle(value),
                    "st": encode(value.bit_generator.state, buffers, tracker, ref, depth + 1)}
    if kind is slice:
        return {"$": "slice", "v": [encode(x, buffers, tracker, ref, depth + 1)
                                    for x in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"$": "ellipsis"}
    return ref(value)


def _numeric_dtype(text: Any) -> np.dtype:
    if not isinstance(text, str) or len(text) > 8:
        raise WireError(f"bad dtype {text!r}")
    try:
        dt = np.dtype(text)
    except TypeError:
        raise WireError(f"bad dtype {text!r}") from None
    if dt.kind not in NUMERIC_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise WireError(f"dtype {dt} is not numeric")
    return dt


def decode(data: Any, buffers: list[bytes], tracker: Tracker, deref: Callable[[dict], Any],
           depth: int = 0) -> Any:
    """Rebuild a value from `encode`'s description, strictly; raises WireError on anything else."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if data is None or isinstance(data, (bool, int)):
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, str):
        return data[:MAX_STRING]
    if isinstance(data, list):
        raise WireError("untagged list")
    if not isinstance(data, dict):
        raise WireError(f"unexpected {type(data).__name__}")
    tag = data.get("$")
    if tag in ("list", "tuple"):
        items = data.get("v")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise WireError("bad list")
        out = [decode(v, buffers, tracker, deref, depth + 1) for v in items]
        return out if tag == "list" else tuple(out)
    if tag == "dict":
        keys, values = data.get("k"), data.get("v")
        if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values) \
                or len(keys) > MAX_ITEMS:
            raise WireError("bad dict")
        out: dict = {}
        for k, v in zip(keys, values):
            key = decode(k, buffers, tracker, deref, depth + 1)
            try:
                out[key] = decode(v, buffers, tracker, deref, depth + 1)
            except TypeError:
                raise WireError("unhashable dict key") from None
        return out
    if tag in ("nd", "sc"):
        dt = _numeric_dtype(data.get("d"))
        index = data.get("b")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(buffers):
            raise WireError("bad buffer index")
        raw = buffers[index]
        if tag == "sc":
            if len(raw) != dt.itemsize:
                raise WireError("bad scalar")
            return np.frombuffer(raw, dtype=dt)[0].copy()
        shape = data.get("s")
        if not isinstance(shape, list) or len(shape) > 32 or not all(
                isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in shape):
            raise WireError("bad shape")
        size = math.prod(shape)
        if size * dt.itemsize != len(raw) or len(raw) > MAX_ARRAY_BYTES:
            raise WireError("array bytes do not match its shape and dtype, or exceed the limit")
        arr = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        handle = data.get("h")
        if handle is None:
            return arr
        if not isinstance(handle, str) or len(handle) > 24:
            raise WireError("bad handle")
        return tracker.local(handle, arr)
    if tag == "dtype":
        return _numeric_dtype(data.get("v"))
    if tag == "ntype":
        return _numeric_dtype(data.get("v")).type
    if tag == "rng":
        name, handle = data.get("bg"), data.get("h")
        if name not in BIT_GENERATORS or not isinstance(handle, str) or len(handle) > 24:
            raise WireError("bad generator")
        state = decode(data.get("st"), buffers, tracker, deref, depth + 1)
        try:
            return tracker.local_rng(handle, name, state)
        except (TypeError, ValueError, KeyError) as err:
            raise WireError(f"bad generator state ({err})") from None
    if tag == "cx":
        v = data.get("v")
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
            raise WireError("bad complex")
        return complex(v[0], v[1])
    if tag == "slice":
        v = data.get("v")
        if not (isinstance(v, list) and len(v) == 3):
            raise WireError("bad slice")
        parts = [decode(x, buffers, tracker, deref, depth + 1) for x in v]
        if not all(p is None or isinstance(p, int) for p in parts):
            raise WireError("bad slice")
        return slice(*parts)
    if tag == "ellipsis":
        return Ellipsis
    if tag == "ref":
        return deref(data)
    raise WireError(f"unknown value tag {tag!r}")


def encode_changes(tracker: Tracker, buffers: list[bytes], ref: Callable[[Any], dict]) -> list:
    """The `sync` part of a message: [[handle, value], ...] for what changed here."""
    out = []
    for handle, value in tracker.changes():
        if isinstance(value, np.ndarray):
            arr = _plain_array(value)
            if arr.nbytes > MAX_ARRAY_BYTES or arr.dtype.kind not in NUMERIC_KINDS:
                continue
            buffers.append(np.ascontiguousarray(arr).tobytes())
            out.append([handle, {"$": "nd", "d": arr.dtype.str, "s": list(arr.shape),
                                 "b": len(buffers) - 1, "h": handle}])
        else:
            out.append([handle, {"$": "rng", "bg": type(value.bit_generator).__name__, "h": handle,
                                 "st": encode(value.bit_generator.state, buffers, tracker, ref)}])
    return out


def apply_changes(sync: Any, buffers: list[bytes], tracker: Tracker, deref: Callable[[dict], Any]) -> None:
    """Write the other side's changes (`encode_changes`) into the local objects, in place."""
    if not isinstance(sync, list) or len(sync) > MAX_ITEMS:
        raise WireError("bad sync list")
    for entry in sync:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)
                and entry[1].get("$") in ("nd", "rng") and entry[1].get("h") == entry[0]):
            raise WireError("bad sync entry")
        decode(entry[1], buffers, tracker, deref)
