"""The worker's first code: lock the process down, then serve the grader (`server.main`).

Run by `Sandbox.start` as `python -E -s -B -m lablib.grading.sandbox.boot CONFIG` in a folder that
holds nothing but `lablib` (under bubblewrap: the read-only mount at `isolation.LIB_MOUNT`), before
anything of the submission is loaded. (`-E -s` is `-I` without dropping that folder from sys.path,
which is how this very `lablib` is found, whatever the grader's install; `-B`: the mounts are
read-only.) `lablib`'s and NumPy's imports run before the drop, as the grader's user: trusted code
from read-only folders, reading nothing of the scratch folder. CONFIG is a JSON object
(`BootConfig`). In order:

1. drop privileges when `uid` is set (the grader is root): no supplementary groups, then the
   submission's own gid and uid, and check that there is no way back to root;
2. `no_new_privs` (no setuid binary or file capability can raise them again) and, outside
   bubblewrap, die with the grader (PR_SET_PDEATHSIG; bubblewrap's `--die-with-parent` does it there);
3. resource limits: address space, file size, open files, core dumps, and processes (per uid, so
   only with a uid of the submission's own);
4. move into the scratch folder and hand over to the server on the two pipes.

A failure before the server runs exits with BOOT_FAILED and a message on stderr, which the grader
quotes (the grader's preflight turns it into an instructor error).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["BootConfig", "lock_down", "main", "BOOT_FAILED"]

#: Exit status when the lock-down itself failed (never the submission's doing).
BOOT_FAILED = 78
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _SIGKILL = 1, 38, 9


@dataclass
class BootConfig:
    """What the grader tells the boot code (all plain JSON values).

    work: the scratch folder. uid: drop to this uid/gid (None: stay). memory_mb: address-space limit
    in MiB (0: none). fsize, nofile, nproc: file size in bytes, open files, processes of the uid.
    rfd, wfd: the pipes from and to the grader. die_with_parent: set PR_SET_PDEATHSIG.
    """

    work: str
    uid: int | None
    memory_mb: int
    fsize: int
    nofile: int
    nproc: int
    rfd: int
    wfd: int
    die_with_parent: bool = True

    def to_json(self) -> str:
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> "BootConfig":
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) - {f.name for f in fields(cls)}:
            raise ValueError("a boot configuration is a JSON object of BootConfig's fields")
        return cls(**data)


def _limit(which: int, value: int) -> None:
    """Set a hard and soft limit, never above the hard limit we already have."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def drop_privileges(uid: int) -> None:
    """Become `uid`/`uid` with no supplementary groups; raises OSError if any of it did not hold."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
        raise OSError(f"the process is not uid {uid} alone after the privilege drop")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("the process could become root again after the privilege drop")


def lock_down(cfg: BootConfig, libc: Any = None) -> None:
    """Steps 1-3 of the module docstring, then chdir into the scratch folder."""
    libc = libc if libc is not None else ctypes.CDLL(None, use_errno=True)
    if cfg.uid is not None:
        drop_privileges(cfg.uid)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if cfg.die_with_parent:
        libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if cfg.memory_mb:
        _limit(resource.RLIMIT_AS, cfg.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, cfg.fsize)
    _limit(resource.RLIMIT_NOFILE, cfg.nofile)
    _limit(resource.RLIMIT_CORE, 0)
    if cfg.uid is not None:  # counted per uid: the grader's own would count its other processes
        _limit(resource.RLIMIT_NPROC, cfg.nproc)
    os.chdir(cfg.work)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    try:
        cfg = BootConfig.from_json(argv[1])
        lock_down(cfg)
    except (OSError, ValueError, TypeError, IndexError) as err:
        print(f"lablib sandbox: the lock-down failed: {err}", file=sys.stderr, flush=True)
        os._exit(BOOT_FAILED)
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # optional; seconds to import
    sys.argv = ["lablib-sandbox"]
    try:  # as the submission's user: can it read the runtime at all?
        from .server import main as serve
    except ImportError as err:
        print(f"lablib sandbox: after the lock-down the runtime cannot be read: {err}", file=sys.stderr, flush=True)
        os._exit(BOOT_FAILED)
    serve(cfg.rfd, cfg.wfd)


if __name__ == "__main__":
    main()
