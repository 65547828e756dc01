"""The `lablib` command: one entry point for the course's steps.

    lablib release [--build DIR]                    instructor: the student release of every notebook
    lablib collect SOURCE [--build DIR]             instructor: submissions (folder or LMS zip) into the course
    lablib grade [--build DIR] [--jobs N] [--timeout S] [--notebook-timeout S] [--memory MB] [--force]
                 [--student ID]...                  instructor: autograde every collected submission
    lablib feedback [--build DIR] [--student ID]... instructor: one HTML feedback page per student
    lablib export [--build DIR]                     instructor: grades.csv (auto + written scores, a status per notebook)
    lablib report [--build DIR] [--out FILE]        instructor: one HTML page about the class (pass rates, mistakes)
    lablib check PATH... [--timeout S] [--memory MB] [--jobs N] [--json]
                                                    student: self-check notebooks (files or folders)

Also `python -m lablib ...`. Each subcommand is registered by one `_add_<name>` function listed in
`COMMANDS`.
Exit status: 0 success, 1 a failed check or a failed step, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]


def _release(args: argparse.Namespace) -> int:
    from lablib.grading.release import ReleaseError, release

    try:
        result = release(args.build)
    except ReleaseError as err:
        print(f"lablib release: error: {err}", file=sys.stderr)
        return 1
    print(result.to_text())
    return 0


def _add_release(sub: argparse._SubParsersAction) -> None:
    from lablib.grading import paths

    p = sub.add_parser(
        "release", help="generate the student release of all notebooks (instructor)",
        description="Copy notebooks/NN_*.ipynb into the nbgrader course, run nbgrader generate_assignment "
                    f"and assemble the student folder <build>/release/{paths.ASSIGNMENT_ID}/ (notebooks "
                    "without solutions or hidden tests, lablib, README) and its zip.",
    )
    p.add_argument("--build", metavar="DIR", default=None,
                   help=f"build folder (default: ${paths.BUILD_ENV}, else build/ in the repository)")
    p.set_defaults(run=_release)


def _check(args: argparse.Namespace) -> int:
    from lablib.grading.check import CheckError, CheckResult, find_notebooks, iter_check, notebook_text, summary_line

    if args.timeout <= 0:
        print("lablib check: error: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        notebooks = find_notebooks(args.paths)
    except CheckError as err:
        print(f"lablib check: error: {err}", file=sys.stderr)
        return 2
    if args.memory < 0:
        print("lablib check: error: --memory must be 0 (no limit) or positive", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("lablib check: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    result = CheckResult([])
    # print each notebook's report as soon as it is done
    for checked in iter_check(notebooks, args.timeout, args.jobs, args.memory):
        result.notebooks.append(checked)
        if not args.json:
            print(notebook_text(result.notebooks[-1]), end="\n\n", flush=True)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(summary_line(result))
    return 0 if result.passed else 1


def _add_check(sub: argparse._SubParsersAction) -> None:
    from lablib.grading.check import CHECK_MEMORY_MB, CHECK_TIMEOUT_S  # standard library only

    p = sub.add_parser(
        "check", help="self-check your notebooks with the visible tests (student)",
        description="Run each notebook top to bottom in a fresh process with its visible tests, and list per "
                    "part and test cell: passed or failed, points, and the diagnosis of each failure. Hidden "
                    "tests are not run, so the points are an upper bound; written answers are graded by hand.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a notebook, or a folder of notebooks")
    p.add_argument("--timeout", type=float, default=CHECK_TIMEOUT_S, metavar="SECONDS",
                   help=f"stop a notebook that runs longer than this (default {CHECK_TIMEOUT_S:g})")
    p.add_argument("--memory", type=int, default=CHECK_MEMORY_MB, metavar="MB",
                   help=f"memory limit per notebook in MiB, 0 for none (default {CHECK_MEMORY_MB}; enforced on Linux)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="check up to N notebooks at once (default: one per CPU core)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    p.set_defaults(run=_check)


def _build_arg(p: argparse.ArgumentParser) -> None:
    from lablib.grading import paths

    p.add_argument("--build", metavar="DIR", default=None,
                   help=f"build folder (default: ${paths.BUILD_ENV}, else build/ in the repository)")


def _collect(args: argparse.Namespace) -> int:
    from lablib.grading.collect import CollectError, collect

    try:
        result = collect(args.source, args.build)
    except CollectError as err:
        print(f"lablib collect: error: {err}", file=sys.stderr)
        return 1
    print(result.to_text())
    return 0


def _add_collect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect", help="copy submissions (a folder or an LMS zip) into the course (instructor)",
        description="Accepts one folder per student (<student>/01_layers.ipynb ...) or files named "
                    "<student>_<notebook>.ipynb (LMS style, e.g. alice_123_456_01_layers.ipynb), in a folder or "
                    "a zip. Copies them to <build>/course/submitted/<student>/backprop-lab/. What cannot be "
                    "placed is listed, not fatal.",
    )
    p.add_argument("source", metavar="SOURCE", help="a folder or a .zip of submissions")
    _build_arg(p)
    p.set_defaults(run=_collect)


def _grade(args: argparse.Namespace) -> int:
    from lablib.grading.autograde import grade

    for name in ("timeout", "notebook_timeout"):
        if getattr(args, name) <= 0:
            print(f"lablib grade: error: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return 2
    if args.memory < 0 or (args.jobs is not None and args.jobs < 1):
        print("lablib grade: error: --memory must be >= 0 and --jobs >= 1", file=sys.stderr)
        return 2
    from lablib.grading import paths
    from lablib.grading.autograde import collected_students
    from lablib.grading.sandbox import SandboxUnavailable

    collected = collected_students(args.build)
    if not collected:
        print(f"lablib grade: error: nothing collected in {paths.submitted_root(args.build)}: run `lablib collect SOURCE` first "
              "(a folder or an LMS zip of the submissions)", file=sys.stderr)
        return 1
    unknown = sorted(set(args.student or ()) - set(collected))
    if unknown:
        shown = ", ".join(collected[:10]) + (", ..." if len(collected) > 10 else "")
        print(f"lablib grade: error: no collected submission for {', '.join(map(repr, unknown))} "
              f"(collected: {shown})", file=sys.stderr)
        return 2
    try:
        run = grade(args.build, students=args.student, jobs=args.jobs, cell_timeout=args.timeout,
                    notebook_timeout=args.notebook_timeout, memory_mb=args.memory, force=args.force,
                    progress=not args.quiet, in_kernel=not args.no_in_kernel)
    except SandboxUnavailable as err:  # the machine's fault, found before any submission was graded
        print(f"lablib grade: error: {err}", file=sys.stderr)
        return 1
    print(run.summary())
    return 0


#: Defaults of `lablib grade`, stated here so that building the parser imports no grader (nbformat,
#: nbgrader): `python -m lablib check` must start in a release without them. A test keeps them equal
#: to lablib.grading.grader's.
GRADE_CELL_TIMEOUT_S, GRADE_NOTEBOOK_TIMEOUT_S, GRADE_MEMORY_MB = 30.0, 300.0, 3072


def _add_grade(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "grade", help="autograde every collected submission (instructor)",
        description="Grade each notebook of each collected submission: the student's answer cells run in a "
                    "locked-down worker process, the instructor's test cells (hidden tests included) in the "
                    "grader, which sees the student's objects only through proxies and compares plain values. "
                    "One grading process per core. Results go to <build>/results/; a re-run skips notebooks "
                    "whose submission and source did not change (--force regrades).",
    )
    _build_arg(p)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="grading processes (default: one per core)")
    p.add_argument("--timeout", type=float, default=GRADE_CELL_TIMEOUT_S, metavar="SECONDS",
                   help=f"limit per cell (default {GRADE_CELL_TIMEOUT_S:g})")
    p.add_argument("--notebook-timeout", type=float, default=GRADE_NOTEBOOK_TIMEOUT_S, metavar="SECONDS",
                   help=f"limit per notebook (default {GRADE_NOTEBOOK_TIMEOUT_S:g})")
    p.add_argument("--memory", type=int, default=GRADE_MEMORY_MB, metavar="MB",
                   help=f"memory limit of the submission's process in MiB, 0 for none (default {GRADE_MEMORY_MB})")
    p.add_argument("--force", action="store_true", help="regrade notebooks whose results are up to date")
    p.add_argument("--student", action="append", default=None, metavar="ID", help="grade only this student (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-in-kernel", action="store_true",
                   help="skip the in-kernel comparison that flags possible tampering for review (faster)")
    p.set_defaults(run=_grade)


def _feedback(args: argparse.Namespace) -> int:
    from lablib.grading.feedback import feedback

    written = feedback(args.build, args.student)
    if not written:
        print("lablib feedback: nothing graded yet (run lablib grade first)", file=sys.stderr)
        return 1
    print(f"Wrote {len(written)} feedback page(s) into {written[0].parent}")
    return 0


def _add_feedback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feedback", help="write one HTML feedback page per student (instructor)",
        description="<build>/feedback/<student>.html: per notebook, part and test cell the points, passed or "
                    "failed and the diagnosis of each failure; no hidden-test source or tracebacks.",
    )
    _build_arg(p)
    p.add_argument("--student", action="append", default=None, metavar="ID", help="only this student (repeatable)")
    p.set_defaults(run=_feedback)


def _export(args: argparse.Namespace) -> int:
    from lablib.grading.export import export

    print(f"Wrote {export(args.build)}")
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write grades.csv: per-notebook scores and statuses, total, review flag (instructor)",
        description="<build>/grades.csv with one row per student: per notebook the autograded points, the points "
                    "a TA gave the written answers in formgrader, and a status (graded, timed out, killed for memory, "
                    "kernel died, malformed notebook, missing, not graded); the totals (equal to nbgrader export's), "
                    "and a review column saying why a submission needs a look. Also: nbgrader export "
                    "--exporter=lablib.grading.export.GradesCsv.",
    )
    _build_arg(p)
    p.set_defaults(run=_export)


def _report(args: argparse.Namespace) -> int:
    from lablib.grading.report import report

    path, rep = report(args.build, args.out)
    if not rep.students:
        print("lablib report: nothing graded yet (run lablib grade first)", file=sys.stderr)
        return 1
    print(f"Wrote {path}: {len(rep.students)} student(s), {len(rep.flagged)} notebook(s) to look at")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="one HTML page about the class: pass rates, common mistakes, totals (instructor)",
        description="<build>/report.html from the stored results (no regrading): per graded cell the share of "
                    "the class that passed, the most common diagnoses with counts, the distribution of totals as "
                    "a plot, and the submissions flagged for review or with a fault status.",
    )
    _build_arg(p)
    p.add_argument("--out", metavar="FILE", default=None, help="where to write the page (default <build>/report.html)")
    p.set_defaults(run=_report)


#: One registration function per subcommand, in the order `--help` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_release, _add_collect, _add_grade, _add_feedback, _add_export, _add_report, _add_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lablib", description="Backprop Lab: course steps around nbgrader, and the student's self-check.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `lablib` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("lablib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lablib check . | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
