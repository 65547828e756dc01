"""The trusted side of the grading sandbox: a locked-down worker process and proxies to its objects.

`Sandbox` starts `lablib.grading._sandbox_worker` in a child process that

- runs in a fresh folder holding only what it is given (the submission's notebooks, without their
  test cells) and a private copy of `lablib`, with a scrubbed environment (`python -I`, no
  PYTHONPATH, HOME/TMPDIR in that folder, one BLAS thread, MPLBACKEND=Agg, LABLIB_PROFILE=grade);
- when the grader runs as root: gets a mount namespace in which the repository (source notebooks,
  gradebook, build folder) is covered by an empty read-only tmpfs, a network namespace without
  network, and then drops to a user and group id of its own (unique per grader process, so workers
  cannot signal or read each other) with no supplementary groups and `no_new_privs`;
- has hard resource limits: address space (`memory_mb`), file size, open files, processes; and
  dies with its grader (PR_SET_PDEATHSIG).

When the grader is not root the folder, environment and limits still apply, but the worker runs as
the grader's own user: `Sandbox.isolation` says so and the grade result records it.

The grader talks to the worker over two pipes (`wire.py`: JSON headers and raw buffers, never
pickle). A request is `{"op", "args", "sync", "release"}`, a reply `{"ok": value}` or
`{"exc": {"t": type, "m": message}}`, each with the shared-array changes (`sync`). Objects stay in
the worker; the grader holds `Remote` proxies whose attribute reads and writes, calls, item access,
`len`, iteration, `copy.deepcopy` (done in the worker) and `np.asarray` are forwarded. Every value
that comes back is rebuilt from plain data, so nothing the worker defines ever runs in the grader.

Every request has a deadline (`Sandbox.deadline`); past it the worker is killed and
`WorkerTimeout` raised. A worker that dies raises `WorkerDied`, one that runs out of memory
`WorkerMemory`. These derive from BaseException so that a check's `except Exception` cannot
swallow them; the caller restarts the worker (`start`) for the next cell.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import wire
from ._sandbox_worker import MEMORY_EXIT
from .check import _BLAS_THREAD_VARS, _kill, _Tail

__all__ = [
    "Sandbox", "Remote", "RemoteError", "WorkerLost", "WorkerTimeout", "WorkerDied", "WorkerMemory",
    "SANDBOX_UID_BASE", "START_TIMEOUT_S",
]

#: Sandboxed workers run as uid/gid SANDBOX_UID_BASE + the grader's pid (when the grader is root).
SANDBOX_UID_BASE = 1_800_000_000
#: Seconds a worker gets to start (import numpy and lablib) and answer its first message.
START_TIMEOUT_S = 60.0
#: Default deadline of a request when the caller set none, in seconds.
DEFAULT_REQUEST_S = 60.0
#: How much of the worker's own output (stdout + stderr) is kept for a crash report, in bytes.
OUTPUT_TAIL_BYTES = 2000
#: Resource limits of the worker besides memory: largest file it may write, open files, processes.
FILE_SIZE_LIMIT = 256 * 1024 * 1024
OPEN_FILES_LIMIT = 256
PROCESS_LIMIT = 64

#: Exceptions raised by the worker that are re-raised here as the same built-in type (with the
#: worker's message); any other type becomes a RemoteError. Never a BaseException.
_MAPPED = {cls.__name__: cls for cls in (
    ValueError, TypeError, NotImplementedError, AttributeError, KeyError, IndexError, ZeroDivisionError,
    ArithmeticError, FloatingPointError, OverflowError, RuntimeError, NameError, UnboundLocalError,
    AssertionError, LookupError, RecursionError, FileNotFoundError, OSError, ImportError,
    ModuleNotFoundError, UnicodeError,
)}

_LIB_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")

#: Runs first in the worker, as the grader's user, before anything of the submission is loaded:
#: limits, namespaces, hiding, privilege drop; then it hands over to _sandbox_worker.main.
_BOOT = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
def limit(which, value):
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass
libc = ctypes.CDLL(None, use_errno=True)
notes = []
def mount(src, dst, fstype, flags, data):
    ok = libc.mount(src and src.encode(), dst.encode(), fstype, flags, data) == 0
    if not ok:
        raise OSError(ctypes.get_errno(), f"mount {src} on {dst}")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
if cfg["uid"] is not None:
    try:
        if libc.unshare(0x00020000 | 0x40000000) != 0:  # CLONE_NEWNS | CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "unshare")
        mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        # the interpreter under a folder the worker's user cannot enter (/root): bind it aside, cover
        # that folder with a tmpfs, and bind it back at the same path
        for parent, child, staging in cfg["expose"]:
            mount(os.path.join(parent, child), staging, None, MS_BIND | MS_REC, None)
        for parent in sorted({e[0] for e in cfg["expose"]}):
            mount("tmpfs", parent, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64k,mode=0755")
        for parent, child, staging in cfg["expose"]:
            os.makedirs(os.path.join(parent, child), exist_ok=True)
            mount(staging, os.path.join(parent, child), None, MS_BIND | MS_REC, None)
        hidden = []
        for path in cfg["hide"]:
            if os.path.isdir(path):
                mount("tmpfs", path, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k,mode=0755")
                hidden.append(path)
        notes.append("no network; hidden: " + (", ".join(hidden) or "nothing"))
    except OSError as err:
        print(f"lablib sandbox: namespaces unavailable ({err}); not dropping privileges", file=sys.stderr)
        cfg["uid"] = None
        notes.append(f"NOT ISOLATED: namespaces unavailable ({err})")
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
    notes.insert(0, f"uid {cfg['uid']}")
else:
    notes.insert(0, "same user as the grader: no privilege drop")
libc.prctl(1, 9, 0, 0, 0)   # PR_SET_PDEATHSIG, SIGKILL: die with the grader
libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
if cfg["memory"]:
    limit(resource.RLIMIT_AS, cfg["memory"] * 1024 * 1024)
limit(resource.RLIMIT_FSIZE, cfg["fsize"])
limit(resource.RLIMIT_NOFILE, cfg["nofile"])
limit(resource.RLIMIT_CORE, 0)
if cfg["uid"] is not None:
    limit(resource.RLIMIT_NPROC, cfg["nproc"])
os.environ["LABLIB_SANDBOX"] = "; ".join(notes)
sys.modules["rfc3987_syntax"] = None  # optional; seconds to import (see lablib.grading.autograde)
sys.path.insert(0, cfg["lib"])
sys.argv = ["lablib-sandbox"]
from lablib.grading._sandbox_worker import main
main(cfg["rfd"], cfg["wfd"])
"""


class RemoteError(Exception):
    """An exception of a type that is not re-raised as itself, raised by the submission's code."""


class WorkerLost(BaseException):
    """The worker is gone (killed or dead); `status` names why, `message` says it in words."""

    status = "kernel died"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class WorkerTimeout(WorkerLost):
    status = "timed out"


class WorkerDied(WorkerLost):
    status = "kernel died"


class WorkerMemory(WorkerLost):
    status = "killed for memory"


def _exposures(root: Path) -> list[list[str]]:
    """[parent, child, staging] for each folder the interpreter needs under a folder that other users
    cannot enter (e.g. a pyenv Python under /root): the boot code binds it back in place for the worker."""
    import stat

    out: list[list[str]] = []
    for needed in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                   Path(sys.executable).resolve().parent, Path(np.__file__).resolve().parent}:
        parts = needed.parts
        for i in range(1, len(parts) - 1):
            parent = Path(*parts[:i + 1])
            if not parent.stat().st_mode & stat.S_IXOTH:
                entry = [str(parent), parts[i + 1]]
                if entry not in [e[:2] for e in out]:
                    staging = root / "mnt" / str(len(out))
                    staging.mkdir(parents=True)
                    out.append(entry + [str(staging)])
                break
    return out


def _hidden_paths(candidates: list[Path]) -> list[str]:
    """Folders to cover in the worker; a candidate that holds the interpreter is covered child by child."""
    keep = [Path(sys.prefix).resolve(), Path(np.__file__).resolve().parent]
    out: list[str] = []
    for path in candidates:
        path = path.resolve()
        if not path.is_dir() or str(path) in out:
            continue
        inside = [k for k in keep if path == k or path in k.parents]
        if not inside:
            out.append(str(path))
            continue
        for child in path.iterdir():
            if child.is_dir() and not any(child == k or child in k.parents for k in keep):
                out.append(str(child))
    return out


class Sandbox:
    """One locked-down worker process for one notebook's grading; see the module docstring.

    Inputs:
        files: name -> bytes, written into the worker's working folder (the submission's notebooks).
        memory_mb: the worker's address-space limit in MiB (0: none).
        hide: folders the worker must not see (covered when the grader is root).
    """

    def __init__(self, files: dict[str, bytes], *, memory_mb: int, hide: list[Path]):
        self.files, self.memory_mb = files, memory_mb
        self.hide = _hidden_paths(hide)
        self.uid = SANDBOX_UID_BASE + os.getpid() if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="lablib-grade-"))
        self.work = self.root / "work"
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.deadline: float | None = None
        self.isolation = ""
        self._release: list[int] = []
        self._tail: _Tail | None = None
        self._fds: tuple[int, int] = (-1, -1)
        self.tracker = wire.Tracker("t")
        self._setup_folder()
        self.expose = _exposures(self.root) if self.uid is not None else []

    # ---- folder and process
    def _setup_folder(self) -> None:
        os.chmod(self.root, 0o755)
        shutil.copytree(Path(__file__).resolve().parent.parent, self.root / "lib" / "lablib", ignore=_LIB_IGNORE)
        self.work.mkdir()
        (self.work / "tmp").mkdir()
        for name, data in self.files.items():
            (self.work / name).write_bytes(data)
        if self.uid is not None:
            for path in [self.work, *self.work.rglob("*")]:
                os.chown(path, self.uid, self.uid)
            os.chmod(self.work, 0o700)

    def make_temp_dir(self) -> str:
        """A new folder the worker can write to (tests that hand a path to the submission use it)."""
        path = tempfile.mkdtemp(dir=self.work / "tmp")
        if self.uid is not None:
            os.chown(path, self.uid, self.uid)
        return path

    def _env(self) -> dict[str, str]:
        from lablib.training import PROFILE_VAR

        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.work), "TMPDIR": str(self.work / "tmp"),
               "LANG": "C.UTF-8", "MPLBACKEND": "Agg", PROFILE_VAR: "grade"}
        for var in _BLAS_THREAD_VARS:
            env[var] = "1"
        return env

    def start(self) -> None:
        """Start (or restart) the worker; raises WorkerDied if it does not come up."""
        self.stop_process()
        self.generation += 1
        self._release = []
        self.tracker = wire.Tracker("t")
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        cfg = {"uid": self.uid, "hide": self.hide, "memory": self.memory_mb, "fsize": FILE_SIZE_LIMIT,
               "nofile": OPEN_FILES_LIMIT, "nproc": PROCESS_LIMIT, "lib": str(self.root / "lib"),
               "rfd": to_worker_r, "wfd": from_worker_w, "expose": self.expose}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, json.dumps(cfg)], cwd=self.work, env=self._env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(to_worker_r, from_worker_w), start_new_session=True,
            )
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self._fds = (from_worker_r, to_worker_w)
        os.set_blocking(to_worker_w, False)
        self._tail = _Tail(self.proc.stdout, OUTPUT_TAIL_BYTES)
        try:
            header, buffers = wire.receive(from_worker_r, time.monotonic() + START_TIMEOUT_S)
            hello = wire.decode(header.get("ok"), buffers, self.tracker, self._deref)
            if not isinstance(hello, dict):
                raise wire.WireError("bad hello")
        except (EOFError, TimeoutError, OSError, wire.WireError, KeyError, TypeError) as err:
            tail = self.output()[-600:]
            self._lost(f"the sandbox did not start ({err})" + (f"; its output:\n{tail}" if tail else ""),
                       timed_out=isinstance(err, TimeoutError))
        self.isolation = str(hello.get("isolation", ""))[:500]

    def output(self) -> str:
        return self._tail.text(1.0) if self._tail else ""

    def stop_process(self) -> int | None:
        proc, self.proc = self.proc, None
        for fd in self._fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds = (-1, -1)
        if proc is None:
            return None
        _kill(proc)
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        self.stop_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _lost(self, why: str, *, timed_out: bool = False) -> None:
        # stop_process kills the worker's process group before reaping it (a reaped pid may be reused)
        code = self.stop_process()
        if timed_out:
            raise WorkerTimeout(why)
        if code == MEMORY_EXIT:
            raise WorkerMemory("the submission's process ran out of memory (the limit is "
                               f"{self.memory_mb} MiB)")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise WorkerDied(f"the submission's process was killed by {name}")
        raise WorkerDied(f"the submission's process ended (exit status {code}): exit(), os._exit() or a "
                         f"crash; {why}")

    # ---- requests
    def _ref(self, obj: Any) -> dict:
        if isinstance(obj, Remote):
            if object.__getattribute__(obj, "_lablib_gen") != self.generation:
                raise WorkerLost("an object from before the submission's process was restarted was used")
            return {"$": "ref", "id": object.__getattribute__(obj, "_lablib_rid")}
        raise TypeError(f"a {type(obj).__name__} of the grader cannot be passed to the submission's code")

    def _deref(self, data: dict) -> Any:
        rid, name, kind = data.get("id"), data.get("n"), data.get("k")
        if not isinstance(rid, int) or not isinstance(name, str) or kind not in ("obj", "cls", "fn", "mod"):
            raise wire.WireError("bad reference")
        return _proxy_type(name[:80])(self, self.generation, rid)

    def request(self, op: str, *args: Any) -> Any:
        """Send one request and return the decoded answer (or raise the worker's exception)."""
        if self.proc is None:
            raise WorkerLost("the submission's process is not running")
        deadline = self.deadline if self.deadline is not None else time.monotonic() + DEFAULT_REQUEST_S
        buffers: list[bytes] = []
        header = {"op": op, "args": [wire.encode(a, buffers, self.tracker, self._ref) for a in args]}
        header["sync"] = wire.encode_changes(self.tracker, buffers, self._ref)
        header["release"], self._release = self._release, []
        rfd, wfd = self._fds
        try:
            wire.send(wfd, header, buffers, deadline)
            reply, rbuf = wire.receive(rfd, deadline)
            if not isinstance(reply, dict):
                raise wire.WireError("the reply is not an object")
            wire.apply_changes(reply.get("sync", []), rbuf, self.tracker, self._deref)
            if "exc" in reply:
                raise _remote_exception(reply["exc"])
            if "ok" not in reply:
                raise wire.WireError("the reply has neither a value nor an exception")
            return wire.decode(reply["ok"], rbuf, self.tracker, self._deref)
        except TimeoutError:
            self._lost("timed out", timed_out=True)
        except (EOFError, BrokenPipeError, ConnectionError) as err:
            self._lost(str(err))
        except wire.WireError as err:
            self._lost(f"it sent a malformed message ({err})")
        raise AssertionError("unreachable")

    def exec_cell(self, source: str, name: str) -> str | None:
        """Run a cell in the worker's notebook namespace; returns its error text, None when it ran."""
        result = self.request("exec", source, name)
        if not isinstance(result, dict):
            raise WorkerDied("the submission's process answered a cell with nonsense")
        error = result.get("error")
        return error if isinstance(error, str) or error is None else str(error)

    def names(self, names: list[str]) -> dict[str, Any]:
        """The worker's values for those of `names` it defines (objects as proxies)."""
        found = self.request("names", sorted(set(names)))
        if not isinstance(found, dict):
            raise WorkerDied("the submission's process answered with nonsense")
        return {k: v for k, v in found.items() if isinstance(k, str) and k in names}


def _remote_exception(info: Any) -> BaseException:
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


def _proxy_type(name: str) -> type:
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


