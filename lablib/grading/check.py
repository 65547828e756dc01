"""`lablib check`: the student's self-check of their own notebooks.

Each notebook runs in a child process (`lablib.grading._worker`), top to bottom, in its own folder
(as a Jupyter kernel does), with the hidden-test blocks removed: the visible tests only. Training
cells run under the `grade` budget profile unless $LABLIB_PROFILE says otherwise. The child has a
wall-clock limit, so an infinite loop is reported as a timeout instead of hanging the check, and a
memory limit (POSIX), so a runaway allocation fails its cell with MemoryError. A crash of the child
(`os._exit`, `exit()`) is reported too; in every case the cells that finished keep their results.
A file that is not a valid notebook is reported in one line.

The result names, per part (the markdown heading above the test cell) and per test cell: passed
or failed, points earned of possible, and for a failure the first lines of the error, which for
lablib's checks is the diagnosis (`CheckReport.assert_ok` puts it in the AssertionError).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

from lablib import cells

__all__ = [
    "CHECK_TIMEOUT_S", "CHECK_MEMORY_MB", "CHECK_PROFILE", "ERROR_LINES",
    "CheckError", "TestResult", "NotebookCheck", "CheckResult",
    "find_notebooks", "check_notebook", "iter_check", "check", "summary_line",
]

#: Default wall-clock limit for checking one notebook, in seconds.
CHECK_TIMEOUT_S = 120.0
#: Default memory limit of the process that runs one notebook, in MiB (RLIMIT_AS: enforced on Linux).
#: A loop that prints or allocates forever then fails its cell with MemoryError instead of swamping
#: the machine.
CHECK_MEMORY_MB = 4096
#: The training budget profile (lablib.training.PROFILES) notebooks run under, unless one is set.
CHECK_PROFILE = "grade"
#: How many lines of a failure's message the text report shows.
ERROR_LINES = 12
#: How much of the child's own output (stdout + stderr) is kept for a crash report, in bytes.
OUTPUT_TAIL_BYTES = 1500
#: Seconds the child gets to exit after it is killed, before the check gives up waiting.
_KILL_GRACE_S = 5.0

#: Environment variables that set the number of threads of NumPy's BLAS (OpenBLAS, MKL, OpenMP).
_BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)

# Statuses of a notebook: its cells all ran; it ran past the time limit; its process ended
# before the last cell; it could not be read as a notebook.
CHECKED, TIMEOUT, CRASHED, MALFORMED = "checked", "timed out", "crashed", "malformed"


class CheckError(ValueError):
    """The check was asked for something that cannot be checked (no such file, no notebooks)."""


@dataclass
class TestResult:
    """One autograded test cell, run with its visible tests only.

    status: "passed", "failed", "timed out" / "crashed" (the notebook stopped in this cell) or
        "not run" (it stopped before this cell).
    error: the exception text of a failure (for lablib checks, the diagnosis); None otherwise.
    """

    grade_id: str
    part: str
    description: str
    points: float
    status: str
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def earned(self) -> float:
        return self.points if self.passed else 0.0


@dataclass
class NotebookCheck:
    """The self-check of one notebook.

    status: CHECKED, TIMEOUT, CRASHED or MALFORMED; message: what happened when not CHECKED.
    tests: every autograded test cell, in notebook order. cell_errors: the other code cells that
    raised ({cell: error}; an answer cell with a syntax error, say). manual_points: the points of the
    written answers, graded by hand and not counted here. seconds: how long the check took.
    """

    path: str
    status: str
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    manual_points: float = 0.0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == CHECKED and all(t.passed for t in self.tests) and not self.cell_errors

    @property
    def earned(self) -> float:
        return sum(t.earned for t in self.tests)

    @property
    def possible(self) -> float:
        return sum(t.points for t in self.tests)

    def parts(self) -> dict[str, list[TestResult]]:
        grouped: dict[str, list[TestResult]] = {}
        for test in self.tests:
            grouped.setdefault(test.part, []).append(test)
        return grouped

    def to_text(self, error_lines: int = ERROR_LINES) -> str:
        name = Path(self.path).name
        if self.status == MALFORMED:
            return f"{name}: NOT CHECKED, {self.message}"
        head = f"{name}: {_num(self.earned)}/{_num(self.possible)} points from visible tests"
        if self.manual_points:
            head += f" (+{_num(self.manual_points)} for written answers, graded by hand)"
        lines = [head]
        if self.status != CHECKED:
            lines.append(f"  {self.status.upper()}: {self.message}")
        for cell, error in self.cell_errors.items():  # first: an answer cell that raises explains the rest
            lines.append(f"  error in cell {cell}:")
            lines += [f"{'':15}| {line}" for line in _first_lines(error, error_lines)]
        width = max([len(t.grade_id) for t in self.tests] + [1])
        for part, tests in self.parts().items():
            earned, possible = sum(t.earned for t in tests), sum(t.points for t in tests)
            lines.append(f"  {part}  [{_num(earned)}/{_num(possible)}]")
            for t in tests:
                lines.append(f"    {t.status:<9}  {t.grade_id:<{width}}  {_num(t.earned)}/{_num(t.points)}"
                             f"  {t.description}".rstrip())
                if t.error:
                    lines += [f"{'':15}| {line}" for line in _first_lines(t.error, error_lines)]
        return "\n".join(lines)

    __str__ = to_text


@dataclass
class CheckResult:
    """The self-check of several notebooks; `passed` only when every one of them passed."""

    notebooks: list[NotebookCheck]

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
        notebooks = [{**asdict(nb), "passed": nb.passed, "earned": nb.earned, "possible": nb.possible}
                     for nb in self.notebooks]
        return {"passed": self.passed, "earned": self.earned, "possible": self.possible,
                "visible_tests_only": True, "notebooks": notebooks}

    def to_text(self, error_lines: int = ERROR_LINES) -> str:
        blocks = [nb.to_text(error_lines) for nb in self.notebooks]
        blocks.append(summary_line(self))
        return "\n\n".join(blocks)

    __str__ = to_text


def summary_line(result: CheckResult) -> str:
    """The closing lines of a text report: the total, and what the check does not cover."""
    failed = [Path(nb.path).name for nb in result.notebooks if not nb.passed]
    verdict = "all visible tests pass" if result.passed else f"not passing: {', '.join(failed)}"
    return (f"Total: {_num(result.earned)}/{_num(result.possible)} points from visible tests; {verdict}.\n"
            "Visible tests only: grading also runs hidden tests, so these points are an upper bound. "
            "Written answers are graded by hand.")


def _num(x: float) -> str:
    return f"{x:g}"


def _first_lines(error: str, limit: int) -> list[str]:
    lines = [line.rstrip() for line in error.strip().splitlines() if line.strip()]
    if lines and lines[0].endswith(":") and len(lines) > 1 and " " not in lines[0]:
        lines = [lines[0] + " " + lines[1].strip()] + lines[2:]  # "AssertionError:" + its first line
    if lines and lines[0].startswith("NotImplementedError"):
        lines[0] += "  (not written yet: the answer cell still raises NotImplementedError)"
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return lines


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


def _read(path: Path) -> tuple[Any, str]:
    """(notebook, "") when `path` is a valid notebook, else (None, what is wrong in one line)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot read the file ({err})"
    try:
        json.loads(raw)
    except json.JSONDecodeError as err:
        return None, f"the file is not valid JSON ({err}); was it saved completely, or edited outside Jupyter?"
    try:
        return cells.load(path), ""
    except Exception as err:  # noqa: BLE001 - any reason a notebook cannot be read is reported
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, f"not a valid Jupyter notebook ({first})"


def _outline(nb: Any) -> tuple[list[tuple[int, TestResult]], float]:
    """The autograded test cells with the part heading each belongs to, and the hand-graded points."""
    tests: list[tuple[int, TestResult]] = []
    manual, part = 0.0, "(before the first heading)"
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "markdown":
            headings = _HEADING.findall(cell.source)
            part = headings[-1] if headings else part
        if meta.get("task"):  # a task cell: graded by hand, never run
            manual += float(meta.get("points", 0))
        if not meta.get("grade"):
            continue
        if meta.get("solution") or cell.cell_type != "code":  # a written (or hand-graded code) answer
            manual += cells.points(cell)
            continue
        doc = re.match(r'\s*(?:"""|\'\'\')(.*?)(?:"""|\'\'\'|$)', cell.source, re.S)
        description = doc.group(1).strip().splitlines()[0] if doc and doc.group(1).strip() else ""
        gid = cells.grade_id(cell) or f"cell-{index}"
        tests.append((index, TestResult(gid, part, description, cells.points(cell), "not run")))
    return tests, manual


def _events(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill
    return records


class _Tail:
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


#: The children running now, so that an interrupted check can stop them all.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _kill(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and anything it started
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _worker_env(blas_threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if blas_threads:  # several notebooks at once: one BLAS thread each, or they fight over the cores
        for var in _BLAS_THREAD_VARS:
            env[var] = str(blas_threads)
    # The lablib running this check, as a fallback for the child (a lablib next to the notebook,
    # as in the student release, still comes first: the child starts in the notebook's folder).
    here = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.setdefault("MPLBACKEND", "Agg")  # plots are drawn, never shown in a window
    # Training cells run with the autograding budget (seconds, not the student's full run) unless the
    # student chose a profile: the check is about the test cells, which do not depend on it.
    from lablib.training import PROFILE_VAR

    env.setdefault(PROFILE_VAR, CHECK_PROFILE)
    return env


def check_notebook(path: str | os.PathLike, timeout: float = CHECK_TIMEOUT_S, *,
                   memory_mb: int = CHECK_MEMORY_MB, blas_threads: int | None = None) -> NotebookCheck:
    """Run one notebook's visible tests in a child process limited to `timeout` seconds.

    memory_mb: the child's memory limit in MiB (0: none). blas_threads: limit the child's BLAS
    threads (when several notebooks are checked at once).
    """
    path = Path(path)
    start = time.perf_counter()
    nb, problem = _read(path)
    if nb is None:
        return NotebookCheck(str(path), MALFORMED, problem)
    planned, manual = _outline(nb)
    tests = {index: test for index, test in planned}
    result = NotebookCheck(str(path), CHECKED, tests=[t for _, t in planned], manual_points=manual)

    with tempfile.TemporaryDirectory(prefix="lablib-check-") as tmp:
        events_file = Path(tmp) / "events.jsonl"
        events_file.touch()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lablib.grading._worker", str(path.resolve()), str(events_file),
             str(memory_mb)],
            cwd=path.resolve().parent, env=_worker_env(blas_threads), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=(os.name == "posix"),
        )
        with _LIVE_LOCK:
            _LIVE.add(proc)
        tail = _Tail(proc.stdout, OUTPUT_TAIL_BYTES)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # on a timeout, and on Ctrl-C: the child is in its own session and would live on
            _kill(proc)  # also ends anything the notebook left running in the background
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
                tests[index].status, tests[index].error = ("failed", error) if error else ("passed", None)
            elif error:
                result.cell_errors[record["grade_id"] or f"#{index}"] = error
    finished = bool(records) and records[-1]["event"] == "end"
    where = ""
    if running is not None:
        where = f" while running cell {running['grade_id'] or '#' + str(running['index'])}"
    if running is not None and running["index"] in tests and not finished:
        tests[running["index"]].status = "timed out" if timed_out else "crashed"
    if timed_out:
        result.status = TIMEOUT
        result.message = (f"stopped after {timeout:g} s{where} (an infinite loop, or a very slow cell?); "
                          "later cells did not run")
    elif not finished:
        result.status = CRASHED
        result.message = (f"the notebook's process ended{where} with exit status {proc.returncode} "
                          "(exit(), os._exit() or a crash); later cells did not run")
        if output:
            result.message += "\n" + "\n".join("    " + line for line in output.splitlines()[-10:])
    result.seconds = round(time.perf_counter() - start, 2)
    return result


def iter_check(notebooks: Sequence[str | os.PathLike], timeout: float = CHECK_TIMEOUT_S,
               jobs: int | None = None, memory_mb: int = CHECK_MEMORY_MB) -> Iterator[NotebookCheck]:
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
                    _kill(proc)
            raise


def check(targets: Iterable[str | os.PathLike], timeout: float = CHECK_TIMEOUT_S,
          jobs: int | None = None, memory_mb: int = CHECK_MEMORY_MB) -> CheckResult:
    """Self-check every notebook named by `targets` (files, or folders of notebooks)."""
    return CheckResult(list(iter_check(find_notebooks(targets), timeout, jobs, memory_mb)))
