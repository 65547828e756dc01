"""Child-process plumbing shared by the self-check and the grader: BLAS threads, output tails,
killing a process group, memory limits. Imports nothing else from `lablib.grading`."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import IO

__all__ = ["BLAS_THREAD_VARS", "OutputTail", "kill_group", "limit_memory"]

#: Environment variables that set the number of threads of NumPy's BLAS (OpenBLAS, MKL, OpenMP).
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class OutputTail:
    """Reads a child's output to the end in a thread, keeping only the last `limit` bytes (a student's
    loop that prints forever must fill neither memory nor disk)."""

    def __init__(self, stream: IO[bytes], limit: int):
        self._stream, self._limit, self._kept = stream, limit, b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._stream:
            for chunk in iter(lambda: self._stream.read(65536), b""):
                self._kept = (self._kept + chunk)[-self._limit:]

    def text(self, wait: float) -> str:
        self._thread.join(wait)
        return self._kept.decode("utf-8", "replace").strip()


def kill_group(proc: subprocess.Popen) -> None:
    """Kill `proc` and everything it started (its process group, on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (POSIX; elsewhere nothing happens): past it, allocations
    raise MemoryError in the cell that made them instead of exhausting the machine."""
    try:
        import resource

        limit = megabytes * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass
