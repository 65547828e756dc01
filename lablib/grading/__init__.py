"""Grading around nbgrader: the student release, the student's self-check (and later: collect,
grade, feedback, export). Submodules are imported on demand; see `lablib.cli` for the commands.
"""
