"""The `lablib` command: one entry point for the course's steps.

    lablib release [--build DIR]                    instructor: the student release of every notebook
    lablib check PATH... [--timeout S] [--memory MB] [--jobs N] [--json]
                                                    student: self-check notebooks (files or folders)

Also `python -m lablib ...`. Each subcommand is registered by one `_add_<name>` function listed in
`COMMANDS`; a new step (collect, grade, feedback, export) is a new function there.
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
    from lablib.grading.check import CheckError, CheckResult, find_notebooks, iter_check, summary_line

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
            print(result.notebooks[-1].to_text(), end="\n\n", flush=True)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(summary_line(result))
    return 0 if result.passed else 1


def _add_check(sub: argparse._SubParsersAction) -> None:
    from lablib.grading.check import CHECK_MEMORY_MB, CHECK_TIMEOUT_S

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


#: One registration function per subcommand, in the order `--help` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_release, _add_check)


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
