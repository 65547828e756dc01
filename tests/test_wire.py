"""The wire between grader and worker, on its own: framing (malformed, truncated, oversized frames),
strict decoding of values, and arrays shared at call boundaries."""

from __future__ import annotations

import json
import os
import struct
import threading

import numpy as np
import pytest

from lablib.grading.sandbox import wire


def no_refs(obj):
    raise AssertionError(f"unexpected reference to {obj!r}")


def roundtrip(value, tracker_out=None, tracker_in=None):
    buffers: list[bytes] = []
    data = wire.encode(value, buffers, tracker_out or wire.Tracker("t"), no_refs)
    return wire.decode(json.loads(json.dumps(data)), buffers, tracker_in or wire.Tracker("w"), no_refs)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def write_raw(fd: int, data: bytes) -> None:
    """Write in a thread: a frame larger than the pipe's buffer would block a single thread."""
    thread = threading.Thread(target=os.write, args=(fd, data), daemon=True)
    thread.start()
    thread.join(0.5)


def frame(header: bytes, buffers: list[bytes] = (), nbuf: int | None = None) -> bytes:
    out = struct.pack("<II", len(header), len(buffers) if nbuf is None else nbuf) + header
    for buf in buffers:
        out += struct.pack("<Q", len(buf)) + buf
    return out


def test_a_message_and_its_buffers_cross_intact(pipe):
    r, w = pipe
    wire.send(w, {"op": "call", "args": [1, "x"]}, [b"abc", b""])
    assert wire.receive(r, deadline=None) == ({"op": "call", "args": [1, "x"]}, [b"abc", b""])


def test_a_truncated_frame_is_the_end_of_the_connection(pipe):
    r, w = pipe
    os.write(w, frame(b'{"op": "ping"}')[:-3])
    os.close(w)
    with pytest.raises(EOFError):
        wire.receive(r)


def test_a_truncated_frame_header_is_the_end_of_the_connection(pipe):
    r, w = pipe
    os.write(w, b"\x05\x00")
    os.close(w)
    with pytest.raises(EOFError):
        wire.receive(r)


def test_a_frame_that_never_completes_times_out(pipe):
    import time

    r, w = pipe
    os.write(w, frame(b'{"op": "ping"}')[:6])
    with pytest.raises(TimeoutError):
        wire.receive(r, deadline=time.monotonic() + 0.2)


def test_a_header_that_is_not_json_is_malformed(pipe):
    r, w = pipe
    os.write(w, frame(b"{not json"))
    with pytest.raises(wire.WireError, match="malformed"):
        wire.receive(r)


def test_a_header_that_is_not_utf8_is_malformed(pipe):
    r, w = pipe
    os.write(w, frame(b"\xff\xfe\x00"))
    with pytest.raises(wire.WireError, match="malformed"):
        wire.receive(r)


def test_an_oversized_header_is_refused_before_it_is_read(pipe):
    r, w = pipe
    os.write(w, struct.pack("<II", wire.MAX_MESSAGE_BYTES + 1, 0))
    with pytest.raises(wire.WireError, match="too large"):
        wire.receive(r)


def test_too_many_buffers_are_refused(pipe):
    r, w = pipe
    os.write(w, frame(b"{}", nbuf=wire.MAX_ITEMS + 1))
    with pytest.raises(wire.WireError, match="too large"):
        wire.receive(r)


def test_buffers_larger_than_a_message_are_refused_before_they_are_read(pipe):
    r, w = pipe
    os.write(w, struct.pack("<II", 2, 1) + b"{}" + struct.pack("<Q", wire.MAX_MESSAGE_BYTES))
    with pytest.raises(wire.WireError, match="larger than"):
        wire.receive(r)


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, float("inf"), "text", [1, [2, (3, "x")]], (1,), {"a": 1, 2: [3]}, 1 + 2j,
    slice(1, None, 2), Ellipsis, np.float32(1.5), np.dtype("int16"), np.float64,
])
def test_plain_values_cross_as_themselves(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_arrays_cross_with_dtype_and_shape():
    for arr in [np.arange(6.0).reshape(2, 3), np.array([True, False]), np.zeros((0, 4), np.int32),
                np.arange(4, dtype=np.complex64), np.float32(2.0) * np.ones((3, 1, 2))]:
        back = roundtrip(arr)
        assert type(back) is np.ndarray and back.dtype == arr.dtype and back.shape == arr.shape
        assert np.array_equal(back, arr)


def test_a_generator_crosses_with_its_state():
    rng = np.random.default_rng(5)
    back = roundtrip(rng)
    assert back.standard_normal() == np.random.default_rng(5).standard_normal()


def test_object_arrays_and_structured_dtypes_never_cross():
    for arr in [np.array([object()], dtype=object), np.zeros(2, dtype=[("a", "f8")])]:
        with pytest.raises(TypeError, match="cannot be graded"):
            roundtrip(arr)


def test_an_array_subclass_crosses_as_a_plain_array():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    back = roundtrip(np.arange(3.0).view(Liar))
    assert type(back) is np.ndarray


def test_values_nested_too_deeply_are_refused_both_ways():
    deep: list = []
    for _ in range(wire.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deeper"):
        roundtrip(deep)
    data: dict = {"$": "list", "v": []}
    for _ in range(wire.MAX_DEPTH + 2):
        data = {"$": "list", "v": [data]}
    with pytest.raises(wire.WireError, match="deeply"):
        wire.decode(data, [], wire.Tracker("t"), no_refs)


@pytest.mark.parametrize("data, buffers, match", [
    ([1, 2], [], "untagged"),
    ({"$": "pickle", "v": "gASV"}, [], "unknown value tag"),
    ({"$": "nd", "d": "|O", "s": [1], "b": 0}, [b"\x00" * 8], "bad dtype|not numeric"),
    ({"$": "nd", "d": "<f8", "s": [2], "b": 0}, [b"\x00" * 8], "do not match"),
    ({"$": "nd", "d": "<f8", "s": [-1], "b": 0}, [b""], "bad shape"),
    ({"$": "nd", "d": "<f8", "s": [1], "b": 3}, [b"\x00" * 8], "buffer index"),
    ({"$": "nd", "d": "<f8", "s": [1], "b": True}, [b"\x00" * 8], "buffer index"),
    ({"$": "nd", "d": "V8", "s": [1], "b": 0}, [b"\x00" * 8], "not numeric"),
    ({"$": "sc", "d": "<f8", "b": 0}, [b"\x00" * 3], "bad scalar"),
    ({"$": "dict", "k": [1], "v": []}, [], "bad dict"),
    ({"$": "dict", "k": [{"$": "list", "v": []}], "v": [1]}, [], "unhashable"),
    ({"$": "rng", "bg": "Evil", "h": "t1", "st": {}}, [], "bad generator"),
    ({"$": "cx", "v": ["1", 2]}, [], "bad complex"),
    ({"$": "slice", "v": [1.5, None, None]}, [], "bad slice"),
    ({"$": "nd", "d": "<f8", "s": [1], "b": 0, "h": "x" * 100}, [b"\x00" * 8], "bad handle"),
])
def test_malformed_values_are_refused(data, buffers, match):
    with pytest.raises(wire.WireError, match=match):
        wire.decode(data, buffers, wire.Tracker("t"), no_refs)


def test_an_oversized_array_is_refused_by_its_declared_size():
    data = {"$": "nd", "d": "<f8", "s": [wire.MAX_ARRAY_BYTES // 8 + 1], "b": 0}
    with pytest.raises(wire.WireError):
        wire.decode(data, [b"\x00" * 8], wire.Tracker("t"), no_refs)


def test_long_strings_are_cut():
    assert len(wire.decode("x" * (wire.MAX_STRING + 10), [], wire.Tracker("t"), no_refs)) == wire.MAX_STRING


def test_a_bad_sync_list_is_refused():
    for sync in [{"h": 1}, [["t1"]], [["t1", {"$": "list", "v": []}]], [["t1", {"$": "nd", "h": "t2"}]]]:
        with pytest.raises(wire.WireError):
            wire.apply_changes(sync, [], wire.Tracker("t"), no_refs)


def test_an_array_changed_in_place_on_one_side_changes_on_the_other():
    grader, worker = wire.Tracker("t"), wire.Tracker("w")
    mine = np.zeros(3)
    buffers: list[bytes] = []
    theirs = wire.decode(wire.encode(mine, buffers, grader, no_refs), buffers, worker, no_refs)
    theirs[1] = 7.0  # the worker mutates the array it received
    buffers = []
    sync = wire.encode_changes(worker, buffers, no_refs)
    wire.apply_changes(json.loads(json.dumps(sync)), buffers, grader, no_refs)
    assert mine.tolist() == [0.0, 7.0, 0.0]
    assert wire.encode_changes(worker, [], no_refs) == []  # nothing changed since
