"""Grade a varied class and write its `lablib report`: what the instructor's page looks like for real.

    python benchmarks/report_class.py [N] [--seed S] [--out DIR] [--jobs J]

Generates N (default 24) submissions of every notebook from the release: each student makes a
few of the known mistakes of tests/answer_variants.py's tables (drawn with a seeded
Generator, common mistakes more often), some leave the release blank, one loops forever, one
crashes its worker, one tampers with the checks. Then release → collect → grade → report into
DIR (default a temporary folder, kept) and prints where the page is, how long grading took, and
the page's figures. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from lablib.grading import paths  # noqa: E402
from lablib.grading.autograde import grade  # noqa: E402
from lablib.grading.collect import collect  # noqa: E402
from lablib.grading.release import release  # noqa: E402
from lablib.grading.report import report  # noqa: E402
from grading_helpers import answers, write_notebook, written_ids  # noqa: E402
from test_grading import PATCHING  # noqa: E402
from test_nb03_grading import GRADING_MISTAKES as BACKPROP_MISTAKES  # noqa: E402
from answer_variants import LAYER_MISTAKES, LOSS_MISTAKES, TRAINING_MISTAKES  # noqa: E402

TABLES = {"01_layers": LAYER_MISTAKES, "02_losses": LOSS_MISTAKES, "03_backprop": BACKPROP_MISTAKES,
          "04_training": TRAINING_MISTAKES}
#: Share of the class that hands in a notebook blank, and the most mistakes one student makes per notebook.
BLANK_SHARE, MAX_MISTAKES = 0.1, 3


def with_mistakes(stem: str, names: list[str]) -> dict[str, str]:
    out = answers(stem, "solution")
    for name in names:
        gid, old, new, _ = TABLES[stem][name]
        if out[gid].count(old) == 1:  # two mistakes in one cell may clash: keep the first
            out[gid] = out[gid].replace(old, new)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    base = args.out or Path(tempfile.mkdtemp(prefix="lablib-class-"))
    build, source = base / "build", base / "submissions"
    release(build)
    released = paths.course_root(build) / "release" / paths.ASSIGNMENT_ID
    for i in range(args.n):
        student = f"student{i:02d}"
        for stem, table in TABLES.items():
            names = list(table)
            weights = np.linspace(3.0, 1.0, len(names))  # the first mistakes of a table are the common ones
            k = int(rng.integers(0, MAX_MISTAKES + 1))
            chosen = list(rng.choice(names, size=k, replace=False, p=weights / weights.sum()))
            mine = answers(stem, "blank") if rng.random() < BLANK_SHARE else with_mistakes(stem, chosen)
            mine.update({gid: f"{student}'s answer." for gid in written_ids(stem)})
            if i == 0 and stem == "02_losses":
                mine["softmax"] = "while True:\n    pass\n" + mine["softmax"]
            if i == 1 and stem == "01_layers":
                mine["relu"] = "import os; os._exit(1)\n" + mine["relu"]
            if i == 2 and stem == "01_layers":
                mine["linear"] = PATCHING + "\n" + mine["linear"]
            write_notebook(source / student, stem, mine, released)
    collect(source, build)
    start = time.perf_counter()
    run = grade(build, jobs=args.jobs, cell_timeout=10, progress=True)
    seconds = time.perf_counter() - start
    path, rep = report(build)
    print(run.summary())
    print(f"\nGraded {len(rep.students)} students in {seconds:.0f} s; report: {path}")
    print(f"totals: {sorted(rep.totals.values())} of {rep.possible:g}")
    print("hardest cells:", [(c.notebook, c.grade_id, f"{c.passed}/{c.graded}") for c in
                             sorted(rep.cells, key=lambda c: c.share)[:6]])
    print("top diagnoses:")
    for text, n, where in rep.diagnoses[:8]:
        print(f"  {n:3d}  {text}  ({', '.join(where)})")
    print("flagged:", [(s, nb, why[:80]) for s, nb, why in rep.flagged])


if __name__ == "__main__":
    main()
