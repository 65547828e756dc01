"""A fingerprint of what code does, for cache keys: `code_fingerprint(train)` changes when the code changes.

Used by `lablib.tuning` so that a cached result is reused only while the code that trained it is the
same. Notebook code has no file to hash: the functions of a notebook cell live in `__main__`, and the
classes `use_notebook` defines live in modules that cannot be imported. So the fingerprint hashes their
*bytecode and constants*, recursively through every global they use (as cloudpickle finds them: the
names of global loads, not attribute names), and identifies code from importable libraries (numpy,
lablib) by name only. A comment or a docstring-free reformatting does not change it; editing a line
of code or a constant that the code reads does.
"""

from __future__ import annotations

import contextlib
import dis
import functools
import hashlib
import sys
import types
from typing import Any, Mapping

import joblib

__all__ = ["code_fingerprint"]


def _is_library(module_name: str | None) -> bool:
    """Code from an importable module (numpy, lablib) is identified by its name; code defined in a
    notebook (`__main__`) or by use_notebook (a module that cannot be imported) by its content."""
    return bool(module_name) and module_name != "__main__" and module_name in sys.modules


def _feed_code(h: Any, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_argcount, code.co_kwonlyargcount)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        elif isinstance(const, frozenset):  # its repr's order depends on the hash seed
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


#: Bytecode instructions through which a function reads or writes a global name (as cloudpickle looks).
_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


def _global_names(code: types.CodeType) -> list[str]:
    """The global names a code object (and the functions nested in it) uses; attribute names do not count."""
    names = [ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return sorted(set(names))


def _feed(h: Any, obj: Any, seen: set[int]) -> None:
    if isinstance(obj, (types.ModuleType, types.FunctionType, type)) or callable(obj):
        if id(obj) in seen:
            h.update(b"<again>")
            return
        seen.add(id(obj))
    if isinstance(obj, types.ModuleType):
        h.update(f"module {obj.__name__}".encode())
        if not _is_library(obj.__name__) or sys.modules.get(obj.__name__) is not obj:
            for name in sorted(vars(obj)):
                if not name.startswith("__"):
                    h.update(name.encode())
                    _feed(h, vars(obj)[name], seen)
    elif isinstance(obj, types.FunctionType):
        h.update(f"function {obj.__module__}.{obj.__qualname__}".encode())
        if _is_library(obj.__module__):
            return
        _feed_code(h, obj.__code__)
        _feed(h, (obj.__defaults__, obj.__kwdefaults__), seen)
        for cell in obj.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                _feed(h, cell.cell_contents, seen)
        for name in _global_names(obj.__code__):
            if name in obj.__globals__:
                h.update(name.encode())
                _feed(h, obj.__globals__[name], seen)
    elif isinstance(obj, type):
        h.update(f"class {obj.__module__}.{obj.__qualname__}".encode())
        if _is_library(obj.__module__):
            return
        for base in obj.__bases__:
            _feed(h, base, seen)
        for name, attr in sorted(vars(obj).items()):
            if name not in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
                h.update(name.encode())
                _feed(h, getattr(attr, "__func__", attr), seen)  # staticmethod / classmethod
    elif isinstance(obj, property):
        _feed(h, (obj.fget, obj.fset, obj.fdel), seen)
    elif isinstance(obj, functools.partial):
        _feed(h, (obj.func, obj.args, obj.keywords), seen)
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode())
            _feed(h, obj[key], seen)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _feed(h, item, seen)
        h.update(b"]")
    else:  # values (numbers, strings, arrays) and instances: by their content
        h.update(type(obj).__qualname__.encode())
        if not _is_library(type(obj).__module__):
            _feed(h, type(obj), seen)
        try:
            h.update(joblib.hash(obj).encode())
        except Exception:  # noqa: BLE001 - an unpicklable object is identified by its type only
            h.update(b"<unhashable>")


def code_fingerprint(*objects: Any) -> str:
    """A hash of what these functions (classes, modules) do: their bytecode and constants, their
    defaults, and recursively everything they reach through their globals that is not an importable
    library (the student's classes from `use_notebook`, the notebook's own functions and constants).
    Editing a comment does not change it; editing code or a constant that the code uses does."""
    h = hashlib.sha256(f"python {sys.version_info[:2]}".encode())
    seen: set[int] = set()
    for obj in objects:
        _feed(h, obj, seen)
    return h.hexdigest()[:20]
