"""The one vocabulary of grading: statuses, the result of a test cell and of a notebook, and their files.

`lablib check` (the student's self-check) and `lablib grade` (the instructor's autograder) both
produce `NotebookResult`s made of `TestResult`s; `feedback`, `export` and `report` read them back
from `<build>/results/` without regrading. A status is a `Status`, never a free string: the sandbox's
words for a lost worker become one through `Status(text)`, which fails loudly on an unknown word.

This module imports nothing else from `lablib.grading` (and nothing outside the standard library),
so that every command can stand on it.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "Status", "TestResult", "NotebookResult", "RESULT_VERSION", "format_points",
    "write_atomic", "umask", "save_result", "read_result", "load_results", "result_path", "weak_isolation",
]

#: Version of the result files; results of another version are regraded.
RESULT_VERSION = 3


class Status(str, enum.Enum):
    """What happened to a test cell, a notebook, or an in-kernel comparison run.

    Test cells: PASSED, FAILED, NOT_RUN, or the notebook status of what stopped them (TIMED_OUT,
    DIED, MEMORY). Notebooks: GRADED (every planned cell ran; check and grade alike), then from
    better to worse DIED, MEMORY, TIMED_OUT, MALFORMED, MISSING. In-kernel runs: COMPLETE, a
    worker-lost status, or FAILED (the comparison itself broke).
    The values are the words written into result files, grades.csv and reports.
    """

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"
    GRADED = "graded"
    DIED = "kernel died"
    MEMORY = "killed for memory"
    TIMED_OUT = "timed out"
    MALFORMED = "malformed notebook"
    MISSING = "missing"
    COMPLETE = "complete"

    def __str__(self) -> str:
        return self.value

    @property
    def is_fault(self) -> bool:
        """A notebook status that asks a person to look (anything but GRADED and MISSING)."""
        return self in _FAULTS

    @classmethod
    def worst(cls, statuses: Iterable["Status"]) -> "Status":
        """The worst of `statuses` in notebook order (GRADED when there are none)."""
        return max(statuses, key=NOTEBOOK_ORDER.index, default=cls.GRADED)


#: Notebook statuses from best to worst; a notebook's status is the worst thing that happened.
NOTEBOOK_ORDER = (Status.GRADED, Status.DIED, Status.MEMORY, Status.TIMED_OUT, Status.MALFORMED, Status.MISSING)
_FAULTS = frozenset(NOTEBOOK_ORDER[1:-1])


@dataclass
class TestResult:
    """One autograded test cell.

    part: the markdown heading above it; description: the first line of its docstring.
    error: the failure's message (a lablib check's diagnosis); never test source.
    hidden: the failure happened in the hidden tests (grading only).
    """

    __test__ = False  # not a pytest test class

    grade_id: str
    part: str
    description: str
    points: float
    status: Status = Status.NOT_RUN
    error: str | None = None
    hidden: bool = False

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def earned(self) -> float:
        return self.points if self.passed else 0.0


def format_points(x: float) -> str:
    """Points as people write them: 13, 2.5 (not 13.0)."""
    return f"{x:g}"


@dataclass
class NotebookResult:
    """The result of one notebook: of one student's submission (grade) or of a file (check).

    status: a notebook Status; message: what happened when it is not GRADED.
    tests: every autograded test cell, in notebook order. cell_errors: other code cells that raised
    ({cell: error}; an answer cell with a syntax error, say). manual_points: the points of the
    written answers, graded by hand in formgrader. path: the checked file (check only). notes: what
    the student should know about how the check ran, such as the test cells it restored (check only).
    The in_kernel_* fields and `disagreements` hold the in-kernel comparison (grading only; see
    `in_kernel.py`); they are never shown to the student.
    """

    notebook: str
    status: Status
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    manual_points: float = 0.0
    seconds: float = 0.0
    student: str = ""
    path: str = ""
    submission_sha256: str = ""
    source_sha256: str = ""
    isolation: str = ""
    in_kernel_score: float | None = None  # None: not run (missing, malformed, or skipped)
    in_kernel_status: Status | None = None  # None: not run
    in_kernel_message: str = ""
    in_kernel_tests: dict[str, Status] = field(default_factory=dict)  # grade_id -> what happened in-kernel
    disagreements: list[str] = field(default_factory=list)  # test cells where the two runs disagree
    in_kernel_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # check only: how it ran (test cells it restored)
    version: int = RESULT_VERSION

    @property
    def earned(self) -> float:
        return sum(t.earned for t in self.tests)

    @property
    def possible(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def passed(self) -> bool:
        """Every test passed and no cell raised (what the self-check's exit status means)."""
        return self.status is Status.GRADED and all(t.passed for t in self.tests) and not self.cell_errors

    def parts(self) -> dict[str, list[TestResult]]:
        """The tests grouped by part, in notebook order."""
        grouped: dict[str, list[TestResult]] = {}
        for test in self.tests:
            grouped.setdefault(test.part, []).append(test)
        return grouped

    @property
    def in_kernel_higher(self) -> list[str]:
        """Disagreeing cells that passed in-kernel and not in the authoritative run (tampering)."""
        status = {t.grade_id: t.status for t in self.tests}
        return [g for g in self.disagreements
                if self.in_kernel_tests.get(g) is Status.PASSED and status.get(g) is not Status.PASSED]

    @property
    def in_kernel_lower(self) -> list[str]:
        """Disagreeing cells that passed in the authoritative run and failed in-kernel."""
        higher = set(self.in_kernel_higher)
        return [g for g in self.disagreements if g not in higher]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**json.loads(json.dumps(data, default=str)), "earned": self.earned, "possible": self.possible}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NotebookResult":
        data = {k: v for k, v in data.items() if k not in ("earned", "possible", "passed")}
        data["status"] = Status(data["status"])
        data["tests"] = [TestResult(**{**t, "status": Status(t["status"])}) for t in data.get("tests", [])]
        if data.get("in_kernel_status") is not None:
            data["in_kernel_status"] = Status(data["in_kernel_status"])
        data["in_kernel_tests"] = {k: Status(v) for k, v in data.get("in_kernel_tests", {}).items()}
        return cls(**data)


def weak_isolation(isolation: str) -> bool:
    """Whether the sandbox's description of a worker says it ran without full isolation.
    (The sandbox reports its isolation as text; this is the one place that reads it.)"""
    return "NOT ISOLATED" in isolation or "no privilege drop" in isolation


def umask() -> int:
    """The process's umask, read without changing it (os.umask would change it for every thread for a
    moment): Linux's /proc/self/status; 0o022 where that is not available."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and a rename. The file gets
    the mode any new file would (0644 under umask 022): mkstemp's 0600 kept a second TA from reading
    grades.csv, the report and the feedback pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def result_path(results_root: Path, student: str, notebook: str) -> Path:
    """`<results_root>/<student>/<notebook stem>.json`."""
    return results_root / student / (Path(notebook).stem + ".json")


def save_result(results_root: Path, result: NotebookResult) -> Path:
    path = result_path(results_root, result.student, result.notebook)
    write_atomic(path, json.dumps(result.to_dict(), indent=1))
    return path


def read_result(path: Path) -> NotebookResult | None:
    """The result stored in `path`, or None when it is unreadable or of another version."""
    try:
        result = NotebookResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return result if result.version == RESULT_VERSION else None


def load_results(results_root: Path) -> dict[str, dict[str, NotebookResult]]:
    """{student: {notebook file name: NotebookResult}} from the result files (unreadable ones skipped)."""
    out: dict[str, dict[str, NotebookResult]] = {}
    if not results_root.is_dir():
        return out
    for path in sorted(results_root.glob("*/*.json")):
        result = read_result(path)
        if result is not None:
            out.setdefault(path.parent.name, {})[result.notebook] = result
    return out
