"""`lablib check` and `lablib.self_check()`: the student's self-check of their own notebooks.

Each notebook runs in a child process (`lablib.grading._worker`), top to bottom, in its own folder
(as a Jupyter kernel does), with the hidden-test blocks removed: the visible tests only. Training
cells run under the `grade` budget profile unless $LABLIB_PROFILE says otherwise. The child has a
wall-clock limit, so an infinite loop is reported as TIMED_OUT instead of hanging the check, and a
memory limit (POSIX), so a runaway allocation fails its cell with MemoryError. A child that dies
(`os._exit`, `exit()`) is reported as DIED; in every case the cells that finished keep their
results. A file that is not a valid notebook is MALFORMED, reported in one line. The child's build
folder ($LABLIB_BUILD: checkpoints, the tuning cache) is a temporary one, so that a check leaves no
folder behind in the student's release (or the repository).

The result (`results.NotebookResult`, the grader's own model) names, per part and test cell:
passed or failed, points, and for a failure the first lines of the error, which for lablib's
checks is the diagnosis. The test cells that run are the released ones, as at grading: a test cell
the student edited or deleted is restored first, and the result says so (`released.py`).
Needs neither nbgrader nor nbformat: it runs in the student's release.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from . import notebook, released
from ._proc import BLAS_THREAD_VARS, OutputTail, kill_group
from .paths import BUILD_ENV
from .results import NotebookResult, Status, TestResult
from .results import format_points as _num

__all__ = [
    "CHECK_TIMEOUT_S", "CHECK_MEMORY_MB", "CHECK_PROFILE", "ERROR_LINES", "CHILD_VAR",
    "CheckError", "CheckResult", "find_notebooks", "check_notebook", "iter_check", "check",
    "notebook_text", "summary_line",
]

#: Default wall-clock limit for checking one notebook, in seconds.
CHECK_TIMEOUT_S = 120.0
#: Default memory limit of the process that runs one notebook, in MiB (RLIMIT_AS: enforced on Linux).
CHECK_MEMORY_MB = 4096
#: The training budget profile (lablib.training.PROFILES) notebooks run under, unless one is set.
CHECK_PROFILE = "grade"
#: How many lines of a failure's message the text report shows.
ERROR_LINES = 12
#: How much of the child's own output (stdout + stderr) is kept for a crash report, in bytes.
OUTPUT_TAIL_BYTES = 1500
#: Seconds the child gets to exit after it is killed, before the check gives up waiting.
_KILL_GRACE_S = 5.0
#: Set in the child's environment: a `lablib.self_check()` cell inside a checked notebook does nothing.
CHILD_VAR = "LABLIB_CHECKING"


class CheckError(ValueError):
    """The check was asked for something that cannot be checked (no such file, no notebooks)."""


@dataclass(repr=False)
class CheckResult:
    """The self-check of several notebooks; `passed` only when every one of them passed."""

    notebooks: list[NotebookResult]
    #: When each checked file was last saved (seconds since the epoch), for a check run from a notebook:
    #: the check reads the file, so edits not saved yet are not checked, and the report says so.
    saved_at: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.notebooks) and all(nb.passed for nb in self.notebooks)

    @property
    def earned(self) -> float:
        return sum(nb.earned for nb in self.notebooks)

    @property
    def possible(self) -> float:
        return sum(nb.possible for nb in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        notebooks = [{**json.loads(json.dumps(asdict(nb), default=str)), "passed": nb.passed,
                      "earned": nb.earned, "possible": nb.possible} for nb in self.notebooks]
        return {"passed": self.passed, "earned": self.earned, "possible": self.possible,
                "visible_tests_only": True, "notebooks": notebooks}

    def to_text(self, error_lines: int = ERROR_LINES) -> str:
        blocks = [notebook_text(nb, error_lines) for nb in self.notebooks]
        blocks.append(summary_line(self))
        return "\n\n".join(blocks)

    __str__ = __repr__ = to_text  # a terminal (or IPython) shows the text report

    def _repr_html_(self) -> str:
        from .selfcheck import check_html

        return check_html(self)




def first_lines(error: str, limit: int = ERROR_LINES) -> list[str]:
    """The first `limit` non-empty lines of an error, "AssertionError:" joined to its message."""
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    if lines and lines[0].endswith(":") and len(lines) > 1 and " " not in lines[0]:
        lines = [lines[0] + " " + lines[1].strip()] + lines[2:]
    if lines and lines[0].startswith("NotImplementedError") and "not written yet" not in lines[0]:
        lines[0] += "  (not written yet: the answer cell still raises NotImplementedError)"
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return lines


def notebook_text(result: NotebookResult, error_lines: int = ERROR_LINES) -> str:
    """The self-check of one notebook as text: the total, then per part each test cell."""
    name = Path(result.path or result.notebook).name
    if result.status is Status.MALFORMED:
        return f"{name}: NOT CHECKED, {result.message}"
    head = f"{name}: {_num(result.earned)}/{_num(result.possible)} points from visible tests"
    if result.manual_points:
        head += f" (+{_num(result.manual_points)} for written answers, graded by hand)"
    lines = [head]
    lines += [f"  NOTE: {note}" for note in result.notes]
    if result.status is not Status.GRADED:
        lines.append(f"  {str(result.status).upper()}: {result.message}")
    for cell, error in result.cell_errors.items():  # first: an answer cell that raises explains the rest
        lines.append(f"  error in cell {cell}:")
        lines += [f"{'':15}| {line}" for line in first_lines(error, error_lines)]
    width = max([len(t.grade_id) for t in result.tests] + [1])
    for part, tests in result.parts().items():
        earned, possible = sum(t.earned for t in tests), sum(t.points for t in tests)
        lines.append(f"  {part}  [{_num(earned)}/{_num(possible)}]")
        for t in tests:
            lines.append(f"    {str(t.status):<9}  {t.grade_id:<{width}}  {_num(t.earned)}/{_num(t.points)}"
                         f"  {t.description}".rstrip())
            if t.error:
                lines += [f"{'':15}| {line}" for line in first_lines(t.error, error_lines)]
    return "\n".join(lines)


def summary_line(result: CheckResult) -> str:
    """The closing lines of a text report: the total, and what the check does not cover."""
    failed = [Path(nb.path).name for nb in result.notebooks if not nb.passed]
    verdict = "all visible tests pass" if result.passed else f"not passing: {', '.join(failed)}"
    saved = saved_sentence(result)
    return (f"Total: {_num(result.earned)}/{_num(result.possible)} points from visible tests; {verdict}.\n"
            "Visible tests only: grading also runs hidden tests, so these points are an upper bound. "
            "Written answers are graded by hand." + (f"\n{saved}" if saved else ""))


def saved_sentence(result: CheckResult, now: float | None = None) -> str:
    """"Checked 01_layers.ipynb as saved at 14:02:31 (3 min ago): ..." for a check run from a notebook, else ""."""
    parts = []
    for path, mtime in result.saved_at.items():
        ago = max(0.0, (time.time() if now is None else now) - mtime)
        age = f"{ago:.0f} s ago" if ago < 90 else f"{ago / 60:.0f} min ago"
        parts.append(f"{Path(path).name} as saved at {time.strftime('%H:%M:%S', time.localtime(mtime))} ({age})")
    if not parts:
        return ""
    return (f"Checked {', '.join(parts)}: edits you have not saved are not checked. Save (Ctrl+S) and run the "
            "check again if you changed something since.")


def find_notebooks(targets: Iterable[str | os.PathLike]) -> list[Path]:
    """The notebooks named by `targets`: files as given, folders by their `*.ipynb` (not recursive).

    Raises CheckError for a path that does not exist or a folder without notebooks.
    """
    found: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            inside = sorted(p for p in target.glob("*.ipynb") if p.is_file())
            if not inside:
                raise CheckError(f"no notebooks (*.ipynb) in {target}")
            found += inside
        elif target.is_file():
            found.append(target)
        else:
            raise CheckError(f"no such file or folder: {target}")
    return found


def _events(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill
    return records


#: The children running now, so that an interrupted check can stop them all.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _worker_env(blas_threads: int | None, build: Path) -> dict[str, str]:
    env = dict(os.environ)
    # What the notebook writes under the build folder (a checkpoint, the tuning cache) goes to a
    # temporary one: a check leaves no folder behind in the student's release (or the repository).
    env[BUILD_ENV] = str(build)
    if blas_threads:  # several notebooks at once: one BLAS thread each, or they fight over the cores
        for var in BLAS_THREAD_VARS:
            env[var] = str(blas_threads)
    # The lablib running this check, as a fallback for the child (a lablib next to the notebook,
    # as in the student release, still comes first: the child starts in the notebook's folder).
    here = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.setdefault("MPLBACKEND", "Agg")  # plots are drawn, never shown in a window
    env[CHILD_VAR] = "1"
    # Training cells run with the autograding budget (seconds, not the student's full run) unless the
    # student chose a profile: the check is about the test cells, which do not depend on it.
    from lablib.training import PROFILE_VAR

    env.setdefault(PROFILE_VAR, CHECK_PROFILE)
    return env


def check_notebook(path: str | os.PathLike, timeout: float = CHECK_TIMEOUT_S, *,
                   memory_mb: int = CHECK_MEMORY_MB, blas_threads: int | None = None) -> NotebookResult:
    """Run one notebook's visible tests in a child process limited to `timeout` seconds.

    memory_mb: the child's memory limit in MiB (0: none). blas_threads: limit the child's BLAS
    threads (when several notebooks are checked at once).
    """
    path = Path(path)
    start = time.perf_counter()
    nb, problem = notebook.load(path)
    if nb is None:
        return NotebookResult(path.name, Status.MALFORMED, problem, path=str(path))
    nb, restored = released.restore(nb, released.find(path))  # the test cells the grader runs
    shape = notebook.outline(nb)
    tests = {t.index: TestResult(t.grade_id, t.part, t.description, t.points) for t in shape.tests}
    result = NotebookResult(path.name, Status.GRADED, tests=list(tests.values()),
                            manual_points=shape.manual_points, path=str(path), notes=restored.notes())

    with tempfile.TemporaryDirectory(prefix="lablib-check-") as tmp:
        events_file = Path(tmp) / "events.jsonl"
        events_file.touch()
        run = path.resolve()
        if restored.changed:  # run the restored copy, still in the notebook's folder
            run = Path(tmp) / path.name
            run.write_text(json.dumps(nb), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lablib.grading._worker", str(run), str(events_file),
             str(memory_mb)],
            cwd=path.resolve().parent, env=_worker_env(blas_threads, Path(tmp) / "build"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=(os.name == "posix"),
        )
        with _LIVE_LOCK:
            _LIVE.add(proc)
        tail = OutputTail(proc.stdout, OUTPUT_TAIL_BYTES)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # on a timeout, and on Ctrl-C: the child is in its own session and would live on
            kill_group(proc)  # also ends anything the notebook left running in the background
            with _LIVE_LOCK:
                _LIVE.discard(proc)
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        records = _events(events_file)
        output = tail.text(_KILL_GRACE_S)

    running: dict[str, Any] | None = None
    for record in records:
        if record["event"] == "start":
            running = record
        elif record["event"] == "done":
            running = None
            index, error = record["index"], record["error"]
            if index in tests:
                tests[index].status, tests[index].error = (Status.FAILED, error) if error else (Status.PASSED, None)
            elif error:
                result.cell_errors[record["grade_id"] or f"#{index}"] = error
    finished = bool(records) and records[-1]["event"] == "end"
    where = ""
    if running is not None:
        where = f" while running cell {running['grade_id'] or '#' + str(running['index'])}"
    if running is not None and running["index"] in tests and not finished:
        tests[running["index"]].status = Status.TIMED_OUT if timed_out else Status.DIED
    if timed_out:
        result.status = Status.TIMED_OUT
        result.message = (f"stopped after {timeout:g} s{where} (an infinite loop, or a very slow cell?); "
                          "later cells did not run")
    elif not finished:
        result.status = Status.DIED
        result.message = (f"the notebook's process ended{where} with exit status {proc.returncode} "
                          "(exit(), os._exit() or a crash); later cells did not run")
        if output:
            result.message += "\n" + "\n".join("    " + line for line in output.splitlines()[-10:])
    for test in result.tests:  # an edited copy that could not be restored proves nothing (released.py)
        if test.grade_id in restored.unverified and test.status in (Status.PASSED, Status.FAILED):
            test.status, test.error = Status.FAILED, released.UNVERIFIED_ERROR
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def iter_check(notebooks: Sequence[str | os.PathLike], timeout: float = CHECK_TIMEOUT_S,
               jobs: int | None = None, memory_mb: int = CHECK_MEMORY_MB) -> Iterator[NotebookResult]:
    """Check `notebooks`, up to `jobs` at once (default: one per CPU core); yields results in order."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(notebooks)))
    if jobs == 1:
        for nb in notebooks:
            yield check_notebook(nb, timeout, memory_mb=memory_mb)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait on the child processes
        try:
            yield from pool.map(lambda nb: check_notebook(nb, timeout, memory_mb=memory_mb, blas_threads=1),
                                notebooks)
        except BaseException:  # Ctrl-C (or the caller stopped iterating): stop every running child
            pool.shutdown(wait=False, cancel_futures=True)
            with _LIVE_LOCK:
                for proc in list(_LIVE):
                    kill_group(proc)
            raise


def check(targets: Iterable[str | os.PathLike], timeout: float = CHECK_TIMEOUT_S,
          jobs: int | None = None, memory_mb: int = CHECK_MEMORY_MB) -> CheckResult:
    """Self-check every notebook named by `targets` (files, or folders of notebooks)."""
    return CheckResult(list(iter_check(find_notebooks(targets), timeout, jobs, memory_mb)))
