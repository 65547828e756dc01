"""The worker's side of the sandbox: runs a submission's answer cells and answers the grader.

Started by `boot.main` once the process is locked down (never by hand); this module runs the
student's code and answers requests on two pipes. A request is `{"op", "args", "sync", "release"}`,
a reply `{"ok": value}` or `{"exc": {"t": type, "m": message}}`, each with the shared-array changes
(`sync`, see `wire.py`). `Server.dispatch` is the table from request name to what it does. Objects
stay here; the grader gets values (`wire.encode`) or references by id (`Server.ref`).
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from typing import Any

import numpy as np

from . import wire

#: Exit status when even the reply to a MemoryError cannot be sent.
MEMORY_EXIT = 86
#: Longest exception message sent back.
MESSAGE_LIMIT = 4000


class Server:
    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.tracker = wire.Tracker("w")
        self.objects: dict[int, Any] = {}
        self.next_id = 0
        self.namespace: dict[str, Any] = {"__name__": "__main__", "display": lambda *a, **k: None}

    # ---- references
    def ref(self, obj: Any) -> dict:
        self.next_id += 1
        self.objects[self.next_id] = obj
        if isinstance(obj, type):
            kind = "cls"
        elif type(obj).__name__ == "module":
            kind = "mod"
        elif callable(obj):
            kind = "fn"
        else:
            kind = "obj"
        name = obj.__name__ if kind == "cls" and isinstance(getattr(obj, "__name__", None), str) else type(obj).__name__
        return {"$": "ref", "id": self.next_id, "n": str(name)[:80], "k": kind}

    def deref(self, data: dict) -> Any:
        try:
            return self.objects[data["id"]]
        except KeyError:
            raise wire.WireError(f"no object {data.get('id')!r}") from None

    def names_value(self, value: Any) -> Any:
        """A name's value for the grader: scalars and arrays by value, everything else by reference."""
        if value is None or type(value) in (bool, int, float, str) or type(value) is np.ndarray:
            return value
        return _ByRef(value)

    # ---- messages
    def reply(self, payload: dict) -> None:
        buffers: list[bytes] = []
        try:
            if "ok" in payload:
                payload["ok"] = self.encode(payload["ok"], buffers)
        except BaseException as exc:  # noqa: BLE001 - a value that cannot cross is the call's error
            buffers = []
            payload = {"exc": _describe(exc)}
        payload["sync"] = wire.encode_changes(self.tracker, buffers, self.ref)
        wire.send(self.wfd, payload, buffers)

    def encode(self, value: Any, buffers: list[bytes]) -> Any:
        def ref(obj: Any) -> dict:
            return self.ref(obj.value if isinstance(obj, _ByRef) else obj)

        if isinstance(value, dict) and type(value) is dict and value.get("__names__"):
            return {"$": "dict", "k": list(value["__names__"].keys()),
                    "v": [ref(v) if isinstance(v, _ByRef) else wire.encode(v, buffers, self.tracker, ref)
                          for v in value["__names__"].values()]}
        if isinstance(value, _ByRef):
            return ref(value)
        return wire.encode(value, buffers, self.tracker, ref)

    def serve(self) -> None:
        self.reply({"ok": {"pid": os.getpid(), "uid": os.getuid()}})
        while True:
            try:
                header, buffers = wire.receive(self.rfd)
            except EOFError:
                return
            try:
                wire.apply_changes(header.get("sync", []), buffers, self.tracker, self.deref)
                for rid in header.get("release", []):
                    self.objects.pop(rid, None)
                args = [wire.decode(a, buffers, self.tracker, self.deref) for a in header.get("args", [])]
                result = self.dispatch(header.get("op"), args)
            except MemoryError:
                try:
                    self.reply({"exc": {"t": "MemoryError", "m": "the memory limit was reached"}})
                except BaseException:  # noqa: BLE001
                    os._exit(MEMORY_EXIT)
                continue
            except BaseException as exc:  # noqa: BLE001 - every failure of student code is a reply
                self.reply({"exc": _describe(exc)})
                continue
            self.reply({"ok": result})

    def dispatch(self, op: str, args: list) -> Any:
        if op == "exec":
            return self.run_cell(*args)
        if op == "names":
            (names,) = args
            return {"__names__": {n: self.names_value(self.namespace[n]) for n in names if n in self.namespace}}
        if op == "getattr":
            obj, name = args
            return getattr(obj, name)
        if op == "setattr":
            obj, name, value = args
            setattr(obj, name, value)
            return None
        if op == "delattr":
            obj, name = args
            delattr(obj, name)
            return None
        if op == "call":
            fn, pos, kw = args
            return fn(*pos, **kw)
        if op == "getitem":
            obj, key = args
            return obj[key]
        if op == "setitem":
            obj, key, value = args
            obj[key] = value
            return None
        if op == "delitem":
            obj, key = args
            del obj[key]
            return None
        if op == "len":
            return len(args[0])
        if op == "list":
            return list(args[0])
        if op == "contains":
            return args[1] in args[0]
        if op == "bool":
            return bool(args[0])
        if op in ("repr", "str"):
            return (repr if op == "repr" else str)(args[0])[:wire.MAX_STRING]
        if op == "array":
            return np.asarray(args[0])
        if op == "float":
            return float(args[0])
        if op == "int":
            return int(args[0])
        if op == "index":
            return args[0].__index__()
        if op == "deepcopy":
            return _ByRef(copy.deepcopy(args[0]))
        if op == "copy":
            return _ByRef(copy.copy(args[0]))
        if op == "isinstance":
            return isinstance(args[0], args[1])
        if op == "dir":
            return [str(n) for n in dir(args[0])]
        if op == "ping":
            return None
        raise ValueError(f"unknown request {op!r}")

    def run_cell(self, source: str, name: str) -> dict:
        """Run one cell in the notebook's namespace; returns {"error": text or None}."""
        from lablib import cells

        nb = _Notebook([_Cell(source, name)])  # the little of a notebook that run_cells reads
        try:
            (result,) = cells.run_cells(nb, namespace=self.namespace).values()
            return {"error": result.error}
        except MemoryError:
            return {"error": "MemoryError: the cell went over the memory limit"}


class _ByRef:
    """Marks a value that must cross as a reference even if it could cross by value."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class _Cell(dict):
    """The little of an nbformat cell that `cells.run_cells` reads."""

    def __init__(self, source: str, name: str):
        super().__init__(cell_type="code", source=source, metadata={"nbgrader": {"grade_id": name}})

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class _Notebook:
    def __init__(self, cell_list: list):
        self.cells = cell_list


def _describe(exc: BaseException) -> dict:
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a student's exception whose __str__ raises
        message = "(the message could not be read)"
    name = type(exc).__name__ if isinstance(type(exc).__name__, str) else "Exception"
    out = {"t": name[:80], "m": message[:MESSAGE_LIMIT]}
    if isinstance(exc, wire.WireError) or isinstance(exc, TypeError) and "cannot be graded" in message:
        out["wire"] = True
    return out


def main(rfd: int, wfd: int) -> None:
    sys.setrecursionlimit(5000)
    try:
        Server(rfd, wfd).serve()
    except MemoryError:
        os._exit(MEMORY_EXIT)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(70)
    os._exit(0)
