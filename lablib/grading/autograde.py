"""`lablib grade`: autograde every collected submission, one grading process per core.

For each student and notebook, `grader.grade_notebook` runs the authoritative grading (answers in a
sandboxed worker, the source's tests in the trusted process; then the in-kernel comparison). This
module is the batch around it: which notebooks are up to date, the process pool (one BLAS thread
each), the progress bar, and what is written where:

- one JSON result per student and notebook (`<build>/results/`), written atomically when that
  notebook is done; a re-run skips those whose submission and source are unchanged (`force`
  regrades);
- nbgrader's gradebook and `autograded/` folder (`gradebook.record`), so that formgrader shows
  each submission with its autograded parts scored and its written answers to grade by hand.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

# jsonschema (imported by nbformat) loads the optional rfc3987_syntax, whose grammars take seconds to
# build; notebook validation does not need it. Every grading process and worker imports nbformat.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from . import paths  # noqa: E402
from ._proc import BLAS_THREAD_VARS  # noqa: E402
from .gradebook import autograded_path  # noqa: E402
from .grader import GRADE_CELL_TIMEOUT_S, GRADE_MEMORY_MB, GRADE_NOTEBOOK_TIMEOUT_S, grade_notebook  # noqa: E402
from .in_kernel import in_kernel_review  # noqa: E402
from .plan import sha256  # noqa: E402
from .results import NOTEBOOK_ORDER, NotebookResult, Status, read_result, result_path, save_result  # noqa: E402
from .sandbox import preflight  # noqa: E402

__all__ = ["GradeRun", "grade", "GRADE_CELL_TIMEOUT_S", "GRADE_NOTEBOOK_TIMEOUT_S", "GRADE_MEMORY_MB"]

#: How many notebooks the summary names one by one before it says "and N more".
SUMMARY_LINES = 20


@dataclass
class GradeRun:
    """What `grade` did: the results (graded now or earlier), how many were skipped, and how long."""

    results: list[NotebookResult]
    graded: int
    skipped: int
    seconds: float
    jobs: int
    gradebook: str = ""  # what was recorded in nbgrader's gradebook, in one line

    def summary(self) -> str:
        students = sorted({r.student for r in self.results})
        counts: dict[Status, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: NOTEBOOK_ORDER.index(kv[0])))
        per = self.seconds / max(1, len({r.student for r in self.results if r.seconds}))
        lines = [f"Graded {self.graded} notebook(s) in {self.seconds:.1f} s with {self.jobs} process(es); "
                 f"{self.skipped} unchanged since the last run were kept.",
                 f"{len(students)} student(s); notebooks: {statuses or 'none'}."]
        if self.graded:
            lines.append(f"About {per:.1f} s per submission (wall clock, all processes).")
        if self.gradebook:
            lines.append(self.gradebook)
        attention = [r for r in self.results if r.status.is_fault]
        for r in attention[:SUMMARY_LINES]:
            lines.append(f"  {r.student}/{r.notebook}: {r.status}: {r.message.splitlines()[0] if r.message else ''}")
        if len(attention) > SUMMARY_LINES:
            lines.append(f"  ... and {len(attention) - SUMMARY_LINES} more (see lablib export or lablib report)")
        flagged = [r for r in self.results if r.disagreements]
        if flagged:
            lines.append(f"{len(flagged)} notebook(s) where the in-kernel result disagrees with the authoritative "
                         "one (flagged for review in lablib export):")
            lines += [f"  {r.student}/{r.notebook}: {in_kernel_review(r)}" for r in flagged[:SUMMARY_LINES]]
            if len(flagged) > SUMMARY_LINES:
                lines.append(f"  ... and {len(flagged) - SUMMARY_LINES} more")
        return "\n".join(lines)


def _grade_job(args: dict) -> dict:
    result = grade_notebook(args["source"], args["submission"], args["student"], sources=args["sources"],
                            cell_timeout=args["cell_timeout"], notebook_timeout=args["notebook_timeout"],
                            memory_mb=args["memory_mb"], hide=args["hide"], in_kernel=args.get("in_kernel", True))
    return result.to_dict()


def _up_to_date(path: Path, submission_file: Path, source_sha: str) -> NotebookResult | None:
    old = read_result(path)
    if old is None:
        return None
    now = sha256(submission_file.read_bytes()) if submission_file.is_file() else ""
    if old.source_sha256 == source_sha and old.submission_sha256 == now:
        return old
    return None


def collected_students(build: str | os.PathLike | None = None) -> list[str]:
    """The students `lablib collect` has put in `<build>/course/submitted/`, sorted."""
    submitted = paths.submitted_root(build)
    return sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []


def grade(build: str | os.PathLike | None = None, *, students: Iterable[str] | None = None,
          jobs: int | None = None, cell_timeout: float = GRADE_CELL_TIMEOUT_S,
          notebook_timeout: float = GRADE_NOTEBOOK_TIMEOUT_S, memory_mb: int = GRADE_MEMORY_MB,
          force: bool = False, progress: bool = True, sources: Iterable[str | os.PathLike] | None = None,
          on_result: Callable[[NotebookResult], None] | None = None, in_kernel: bool = True,
          gradebook: bool = True) -> GradeRun:
    """Grade every collected submission (`<build>/course/submitted/<student>/backprop-lab/`).

    jobs: grading processes (default one per core). force: regrade results that are up to date.
    students: only these. sources: the source notebooks (default the repository's notebooks/).
    in_kernel: also run the in-kernel comparison of each notebook (flags disagreements for review).
    gradebook: also record the results in nbgrader's gradebook and autograded/ (for formgrader).
    """
    start = time.monotonic()
    build = paths.build_root(build)
    results_root = paths.results_root(build)
    sources = [Path(s).resolve() for s in (sources or paths.source_notebooks())]
    submitted = paths.submitted_root(build)
    names = collected_students(build)
    if students is not None:
        wanted = set(students)
        names = [n for n in names if n in wanted]
    source_sha = {s.name: sha256(s.read_bytes()) for s in sources}
    hide = [str(paths.repo_root()), str(build)] + sorted({str(s.parent) for s in sources})
    results: list[NotebookResult] = []
    fresh: list[NotebookResult] = []  # graded now, or not yet in nbgrader's autograded/
    todo: list[dict] = []
    for student in names:
        folder = submitted / student / paths.ASSIGNMENT_ID
        for source in sources:
            out = result_path(results_root, student, source.name)
            kept = None if force else _up_to_date(out, folder / source.name, source_sha[source.name])
            if kept is not None:
                results.append(kept)
                if gradebook and not autograded_path(build, student, source.name).is_file():
                    fresh.append(kept)
                continue
            todo.append({"source": str(source), "submission": str(folder), "student": student,
                         "sources": [str(s) for s in sources], "cell_timeout": cell_timeout,
                         "notebook_timeout": notebook_timeout, "memory_mb": memory_mb, "hide": hide,
                         "in_kernel": in_kernel})
    skipped = len(results)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if todo:  # no sandbox can start here -> sandbox.SandboxUnavailable before the first submission
        preflight(memory_mb)

    def record(data: dict) -> None:
        result = NotebookResult.from_dict(data)
        save_result(results_root, result)
        results.append(result)
        fresh.append(result)
        if on_result:
            on_result(result)

    bar = _progress(len(todo), progress)
    try:
        if jobs == 1 or len(todo) <= 1:
            for job in todo:
                record(_grade_job(job))
                bar.update(1)
        else:
            _run_pool(todo, jobs, record, bar)
    finally:
        bar.close()
    results.sort(key=lambda r: (r.student, r.notebook))
    note = _record_in_gradebook(fresh, build, sources) if gradebook else ""
    return GradeRun(results, len(todo), skipped, round(time.monotonic() - start, 2), jobs, note)


def _record_in_gradebook(results: list[NotebookResult], build: Path, sources: list[Path]) -> str:
    """Hand the results to nbgrader (gradebook.py); one line saying what happened."""
    try:
        from .gradebook import record
    except ImportError as err:  # nbgrader missing: the results stand, formgrader just cannot see them
        return f"Gradebook not updated: nbgrader cannot be imported ({err})."
    try:
        return record(results, build, sources).to_text()
    except Exception as err:  # noqa: BLE001 - the results are saved; say why formgrader cannot see them
        return (f"Gradebook not updated ({type(err).__name__}: {err}); the results are saved, "
                "run lablib grade again to record them.")


def _run_pool(todo: list[dict], jobs: int, record: Callable[[dict], None], bar: Any) -> None:
    import multiprocessing

    saved = {var: os.environ.get(var) for var in BLAS_THREAD_VARS}
    os.environ.update({var: "1" for var in BLAS_THREAD_VARS})  # the grading processes: one BLAS thread
    try:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    try:
        pending = {pool.submit(_grade_job, job): job for job in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    record(future.result())
                except Exception as err:  # noqa: BLE001 - a grading process that failed: say so, go on
                    record(_failed_job(job, err))
                bar.update(1)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _failed_job(job: dict, err: BaseException) -> dict:
    detail = "".join(traceback.format_exception_only(type(err), err)).strip()
    result = NotebookResult(Path(job["source"]).name, Status.DIED, student=job["student"],
                            message=f"the grading process failed ({detail}); regrade with lablib grade")
    return result.to_dict()


def _progress(total: int, enabled: bool) -> Any:
    """tqdm's bar on stderr (a required dependency), or nothing."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="notebook", desc="grading", file=sys.stderr, disable=not enabled or total == 0)
