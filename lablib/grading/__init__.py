"""Grading around nbgrader. Read `DESIGN.md` first (what runs where, and why).

The shared vocabulary, at the bottom (they import nothing else from this package):
    results.py    Status, TestResult, NotebookResult; result files
    notebook.py   reading notebooks; nbgrader's cell roles (answer, test, written, setup, locked)
    _proc.py      child-process plumbing (BLAS threads, output tail, kill, memory limit)
    paths.py      the map of build/
The student's side (needs neither nbgrader nor nbformat):
    check.py, _worker.py, selfcheck.py   `lablib check` and `lablib.self_check()`
The instructor's side:
    release.py    `lablib release` (nbgrader generate_assignment)
    collect.py    `lablib collect`
    plan.py       which cells run where
    grader.py     one notebook's authoritative run (the worker: the `sandbox` package)
    in_kernel.py  the in-kernel comparison, for review
    autograde.py  `lablib grade`: the batch
    gradebook.py  the results in nbgrader's gradebook and autograded/ (formgrader)
    feedback.py, export.py, report.py   `lablib feedback`, `lablib export`, `lablib report`
Submodules are imported on demand; see `lablib.cli` for the commands.
"""
