"""nbgrader configuration of Backprop Lab (nbgrader 0.9.6).

nbgrader reads this file when it runs with the repository as its working directory, which is how
`lablib release` starts it, and how `bash scripts/lab.sh --instructor` starts formgrader. By hand,
from the repository root:

    LABLIB_BUILD=/some/where nbgrader generate_assignment backprop-lab --force

Everything nbgrader writes goes under the git-ignored build folder (`build/`, or `$LABLIB_BUILD`):
see `lablib/grading/paths.py` for the layout. The option values below were checked against the
installed nbgrader 0.9.6 source (nbgrader/coursedir.py, nbgrader/preprocessors/*.py,
nbgrader/converters/generate_assignment.py).
"""

import sys
from pathlib import Path

# The names and folders come from lablib (one source of truth); import it from this checkout even
# when the package is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lablib.grading import paths  # noqa: E402

c = get_config()  # noqa: F821 - provided by traitlets when it executes this file

# --- Where things live -------------------------------------------------------------------------
# source/, release/, submitted/, autograded/, feedback/ are folders of this root, one subfolder
# per assignment; nbgrader's default root would be the current directory.
c.CourseDirectory.root = str(paths.course_root())
# nbgrader's default is the same file (sqlite:///<root>/gradebook.db); stated so it is visible.
c.CourseDirectory.db_url = "sqlite:///" + str(paths.course_root() / "gradebook.db")
# One assignment, paths.ASSIGNMENT_ID ("backprop-lab"), holds every notebook, so one submission is
# one student's whole lab; lablib passes it on nbgrader's command line.

# --- Student release (generate_assignment) ---------------------------------------------------
# generate_assignment's pipeline already runs LockCells, ClearSolutions, ClearOutput,
# ClearHiddenTests and ClearMarkScheme; the stubs are stated explicitly because the release test
# and lablib.cells.blank_solutions() rely on them. The code stub must raise, so a test cell run
# against an unanswered cell fails loudly instead of passing on a silent `None`.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Refuse to release a notebook in which a `### BEGIN SOLUTION` sits in a cell that is not a solution
# cell, or a `### BEGIN HIDDEN TESTS` in a cell that is not a grade cell: otherwise the region is
# cleared but its cell gets no grade_id, and autograding cannot account for it (default True; kept).
c.ClearSolutions.enforce_metadata = True
c.ClearHiddenTests.enforce_metadata = True
# Record the assignment in the gradebook on the first release (default True; kept).
c.GenerateAssignment.create_assignment = True

# --- Autograding ------------------------------------------------------------------------------
# Not nbgrader's: `lablib grade` runs the tests outside the student's kernel (lablib/grading/DESIGN.md)
# and then hands the results to nbgrader's gradebook and autograded/ folder, where formgrader shows
# them. Its limits are lablib's (`lablib grade --timeout/--notebook-timeout/--memory`); deleted or
# edited test cells are always restored from the source. Formgrader's "autograde" button would
# re-grade a submission in one kernel, nbgrader's way, and replace those scores: use `lablib grade`.
