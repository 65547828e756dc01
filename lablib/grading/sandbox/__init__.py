"""The grading sandbox: run a submission's code in a locked-down worker, see its objects from the grader.

- `process.py`: `Sandbox`, one worker process (start, stop, requests) and `preflight`;
- `isolation.py`: which isolation this machine allows (bubblewrap, else limits only) and its command line;
- `boot.py`: the worker's first code, the lock-down (privilege drop, limits), a module of its own;
- `server.py`: the worker's side, a table from request name to handler;
- `proxy.py`: `Remote`, the worker's objects seen from the grader;
- `wire.py`: framing and values between the two, never pickle;
- `errors.py`: what can go wrong, `WorkerLost` and its kinds, `SandboxUnavailable`.

Nothing here knows about notebooks.
"""


from __future__ import annotations

from typing import Any

from .errors import RemoteError, SandboxUnavailable, WorkerDied, WorkerLost, WorkerMemory, WorkerTimeout

__all__ = [
    "Sandbox", "Remote", "RemoteError", "WorkerLost", "WorkerTimeout", "WorkerDied", "WorkerMemory",
    "SandboxUnavailable", "Isolation", "preflight", "BWRAP", "LIMITS", "LIMITS_OWN_UID",
    "SANDBOX_UID_BASE", "START_TIMEOUT_S",
]

#: Where the names not imported above live: imported when first used, so that the worker, which
#: runs `boot` inside this package, does not load the grader's side (subprocess, the proxies).
_LAZY = {"Sandbox": "process", "preflight": "process", "START_TIMEOUT_S": "process", "Remote": "proxy",
         "Isolation": "isolation", "BWRAP": "isolation", "LIMITS": "isolation", "LIMITS_OWN_UID": "isolation",
         "SANDBOX_UID_BASE": "isolation"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
