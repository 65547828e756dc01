"""Grading throughput on the full lab: N generated submissions, graded by `lablib grade`.

    python benchmarks/grading.py [N] [--jobs J] [--no-in-kernel]

Generates N submissions of every notebook (alternately the solutions and the blank release, so
that both the fast-failing and the full-work paths are timed), collects them into a temporary
build folder, grades them with one process per core (or J), and prints seconds per submission and
submissions per minute, and how much of it the in-kernel comparison took (`--no-in-kernel`
leaves it out, to measure the grading without it). Issue 3's target on the 2-core machine: one
complete submission in at most 15 s, 100 in at most 12 minutes. Not a test: the figure depends
on the machine and its load. The isolation the workers had (bubblewrap, or limits only) is printed
too: `LABLIB_GRADE_ISOLATION=limits` measures the grading without bubblewrap.

Issue 13 (bubblewrap, one uid per sandbox), measured on the shared 2-core machine under a load
average of ~10 from other jobs, the code before and after running side by side (`4 --jobs 1` twice,
`6 --jobs 1` once): 19.5 s -> 20.6 s, 23.7 s -> 23.9 s, 20.4 s -> 20.6 s per submission (+6 %, +1 %,
+1 %; the noise between rounds is larger than the difference). A sandbox's start + first cell, its requests and its stop cost the same
within noise (about 1.0-1.3 s, 0.6-0.9 ms, 0.05 s).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lablib import cells  # noqa: E402
from lablib.grading import paths  # noqa: E402
from lablib.grading.autograde import grade  # noqa: E402
from lablib.grading.collect import collect  # noqa: E402


def write_submission(folder: Path, blank: bool) -> None:
    folder.mkdir(parents=True)
    for source in paths.source_notebooks():
        nb = copy.deepcopy(cells.load(source))
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution") and blank:
                cell.source = cells.blank_solutions(cell.source)
            elif cell.cell_type == "code" and meta.get("grade"):
                cell.source = cells.strip_hidden_tests(cell.source)
        nbformat.write(nb, str(folder / source.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10, help="number of submissions (default 10)")
    parser.add_argument("--jobs", type=int, default=None, help="grading processes (default: one per core)")
    parser.add_argument("--no-in-kernel", action="store_true",
                        help="skip the in-kernel comparison (grading as it was without the review flag)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lablib-bench-") as tmp:
        source, build = Path(tmp) / "submissions", Path(tmp) / "build"
        for i in range(args.n):
            write_submission(source / f"student{i:03d}", blank=bool(i % 2))
        collect(source, build)
        start = time.perf_counter()
        run = grade(build, jobs=args.jobs, progress=True, in_kernel=not args.no_in_kernel)
        wall = time.perf_counter() - start
    notebooks = len(run.results)
    per_notebook = [r.seconds for r in run.results if r.seconds]
    in_kernel = [r.in_kernel_seconds for r in run.results if r.in_kernel_seconds]
    print(run.summary())
    levels = sorted({r.isolation.split(":", 1)[0] for r in run.results if r.isolation})
    print(f"isolation: {', '.join(levels) or 'none recorded'} (lablib.grading.sandbox.isolation)")
    print(f"\n{args.n} submissions ({notebooks} notebooks) in {wall:.1f} s with {run.jobs} process(es) "
          f"on {os.cpu_count()} cores:")
    print(f"  {wall / args.n:.2f} s per submission (wall clock), {60 * args.n / wall:.1f} submissions per minute")
    if per_notebook:
        print(f"  one notebook alone: {min(per_notebook):.1f}-{max(per_notebook):.1f} s "
              f"(mean {sum(per_notebook) / len(per_notebook):.1f} s)")
    if in_kernel:
        flagged = sum(1 for r in run.results if r.disagreements)
        print(f"  in-kernel comparison: {sum(in_kernel) / args.n:.2f} s of one process's time per submission "
              f"(one notebook {min(in_kernel):.1f}-{max(in_kernel):.1f} s; included above); "
              f"{flagged} notebook(s) flagged")
    else:
        print("  in-kernel comparison: not run (--no-in-kernel)")


if __name__ == "__main__":
    main()
