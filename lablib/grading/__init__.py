"""Grading around nbgrader: the student release (`release`), the student's self-check (`check`),
and the instructor's pipeline: `collect` (submissions into the course), `autograde` (grading in a
sandbox: the `sandbox` package), `feedback` (HTML per student) and `export` (CSV).
Submodules are imported on demand; see `lablib.cli` for the commands.
"""
