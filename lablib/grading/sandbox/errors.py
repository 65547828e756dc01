"""What can go wrong with a sandboxed worker, as exception types the grader can tell apart.

`WorkerLost` and its subclasses derive from BaseException so that a check's `except Exception`
cannot swallow them; `status` is the notebook status the loss stands for. `SandboxUnavailable` is the
instructor's problem, not the student's: no sandbox can start on this machine, and grading stops
before the first submission instead of grading the class "kernel died".
"""

from __future__ import annotations

__all__ = ["RemoteError", "WorkerLost", "WorkerTimeout", "WorkerDied", "WorkerMemory", "SandboxUnavailable"]


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


class SandboxUnavailable(RuntimeError):
    """No sandbox can start here: `why` it failed and `fix`, what the instructor can change."""

    def __init__(self, why: str, fix: str):
        super().__init__(f"no grading sandbox can start: {why}\nWhat to do: {fix}")
        self.why, self.fix = why, fix
