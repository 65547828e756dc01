"""Objects of the submission seen from the trusted side: `Remote` proxies and the worker's exceptions.

A `Remote` stands for an object that stays in the worker. Its attribute reads and writes, calls,
item access, `len`, iteration, `copy.deepcopy` (done in the worker) and `np.asarray` are forwarded
as requests (`Sandbox.request`); every value that comes back is rebuilt from plain data by
`wire.decode`, so nothing the worker defines ever runs in the grader. Equality and hashing are by
identity, and a proxy cannot be pickled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import RemoteError, WorkerLost, WorkerMemory

if TYPE_CHECKING:
    from .process import Sandbox

__all__ = ["Remote", "proxy_type", "remote_exception"]

#: Exceptions raised by the worker that are re-raised here as the same built-in type (with the
#: worker's message); any other type becomes a RemoteError. Never a BaseException.
_MAPPED = {cls.__name__: cls for cls in (
    ValueError, TypeError, NotImplementedError, AttributeError, KeyError, IndexError, ZeroDivisionError,
    ArithmeticError, FloatingPointError, OverflowError, RuntimeError, NameError, UnboundLocalError,
    AssertionError, LookupError, RecursionError, FileNotFoundError, OSError, ImportError,
    ModuleNotFoundError, UnicodeError,
)}


def remote_exception(info: Any) -> BaseException:
    """The grader's exception for the worker's description of one ({"t": type name, "m": message})."""
    if not isinstance(info, dict):
        return RemoteError("the submission's code raised an exception that could not be described")
    kind, message = str(info.get("t", "Exception"))[:80], str(info.get("m", ""))[:4000]
    if kind == "MemoryError":
        return WorkerMemory(f"MemoryError in the submission's code: {message or 'the memory limit was reached'}")
    cls = _MAPPED.get(kind)
    exc = cls(message) if cls is not None else RemoteError(f"{kind}: {message}" if message else kind)
    exc.remote_type = kind  # type: ignore[attr-defined]
    return exc


_PROXY_TYPES: dict[str, type] = {}


def proxy_type(name: str) -> type:
    """A Remote subclass named like the worker's type, so that type(proxy).__name__ reads as expected."""
    if name not in _PROXY_TYPES:
        safe = name if name.isidentifier() else "Remote"
        _PROXY_TYPES[name] = type(safe, (Remote,), {"__slots__": (), "__module__": "submission"})
    return _PROXY_TYPES[name]


#: Special names read through to the worker object; every other dunder is not forwarded.
_FORWARDED_DUNDERS = {"__name__", "__qualname__", "__doc__"}


class Remote:
    """A proxy for an object that stays in the worker; see the module docstring."""

    __slots__ = ("_lablib_sb", "_lablib_gen", "_lablib_rid", "__weakref__")

    def __init__(self, sandbox: Sandbox, generation: int, rid: int):
        object.__setattr__(self, "_lablib_sb", sandbox)
        object.__setattr__(self, "_lablib_gen", generation)
        object.__setattr__(self, "_lablib_rid", rid)

    def _lablib_request(self, op: str, *args: Any) -> Any:
        return object.__getattribute__(self, "_lablib_sb").request(op, self, *args)

    def __del__(self) -> None:
        try:
            sb = object.__getattribute__(self, "_lablib_sb")
            if sb.generation == object.__getattribute__(self, "_lablib_gen"):
                sb._release.append(object.__getattribute__(self, "_lablib_rid"))
        except Exception:  # noqa: BLE001 - at interpreter exit
            pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in _FORWARDED_DUNDERS:
            raise AttributeError(name)
        return self._lablib_request("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._lablib_request("setattr", name, value)

    def __delattr__(self, name: str) -> None:
        self._lablib_request("delattr", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._lablib_request("call", list(args), dict(kwargs))

    def __getitem__(self, key: Any) -> Any:
        return self._lablib_request("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._lablib_request("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._lablib_request("delitem", key)

    def __len__(self) -> int:
        n = self._lablib_request("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of the submission's object is not a non-negative int")
        return n

    def __iter__(self) -> Any:
        items = self._lablib_request("list")
        if type(items) is not list:
            raise TypeError("the submission's object could not be iterated")
        return iter(items)

    def __contains__(self, item: Any) -> bool:
        return self._lablib_request("contains", item) is True

    def __bool__(self) -> bool:
        value = self._lablib_request("bool")
        if type(value) is not bool:
            raise TypeError("bool() of the submission's object is not a bool")
        return value

    def __repr__(self) -> str:
        try:
            text = self._lablib_request("repr")
        except (Exception, WorkerLost):  # noqa: BLE001 - a repr never fails
            return f"<{type(self).__name__} of the submission>"
        return text if type(text) is str else f"<{type(self).__name__} of the submission>"

    def __str__(self) -> str:
        text = self._lablib_request("str")
        return text if type(text) is str else repr(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self._lablib_request("array")
        if type(arr) is not np.ndarray:
            raise TypeError(f"the submission's {type(self).__name__} is not array-like")
        return arr if dtype is None else arr.astype(dtype)

    def __float__(self) -> float:
        value = self._lablib_request("float")
        if type(value) is not float:
            raise TypeError("float() of the submission's object is not a float")
        return value

    def __int__(self) -> int:
        value = self._lablib_request("int")
        if type(value) is not int:
            raise TypeError("int() of the submission's object is not an int")
        return value

    def __index__(self) -> int:
        value = self._lablib_request("index")
        if type(value) is not int:
            raise TypeError("the submission's object is not an integer")
        return value

    def __deepcopy__(self, memo: dict) -> Any:
        return self._lablib_request("deepcopy")

    def __copy__(self) -> Any:
        return self._lablib_request("copy")

    def __instancecheck__(self, obj: Any) -> bool:
        sb = object.__getattribute__(self, "_lablib_sb")
        return sb.request("isinstance", obj, self) is True

    def __dir__(self) -> list[str]:
        names = self._lablib_request("dir")
        return [n for n in names if type(n) is str] if type(names) is list else []

    def __eq__(self, other: Any) -> bool:
        return self is other

    def __ne__(self, other: Any) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("an object of the submission cannot be pickled")


