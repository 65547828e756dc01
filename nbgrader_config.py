"""nbgrader configuration of Backprop Lab (nbgrader 0.9.6).

nbgrader reads this file when it runs with the repository as its working directory, which is how
`lablib release` (and the later grading commands) start it. Run by hand, from the repository root:

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

# --- Autograding (used by the grading steps) ---------------------------------------------------
# A student who deletes a test cell would otherwise score 0 on it silently: autograde puts every
# missing grade cell back from the gradebook (OverwriteCells.add_missing_cells, False by default).
c.OverwriteCells.add_missing_cells = True
# Per-cell timeout in seconds (nbgrader's default is also 30). Every test cell of the lab runs in
# well under a second on a laptop; 30 s bounds a hanging cell while leaving room for a slow machine.
# nbgrader then interrupts the kernel (Execute.interrupt_on_timeout, default True) and records a
# CellTimeoutError in that cell; the rest of the notebook still runs.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True
