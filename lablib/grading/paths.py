"""Where the course lives: the assignment id, the source notebooks and the generated `build/` tree.

One source of truth for these names: `nbgrader_config.py`, `release` and the tests all read them
from here. Everything generated goes under the build folder (git-ignored), which is
`<repo>/build/` unless the environment variable `LABLIB_BUILD` names another one:

    build/
      course/                       nbgrader's course root (CourseDirectory.root)
        source/backprop-lab/        copies of notebooks/NN_*.ipynb (the instructor versions)
        release/backprop-lab/       nbgrader's student versions
        gradebook.db                nbgrader's gradebook
        submitted/<student>/backprop-lab/NN_*.ipynb   (written by `lablib collect`)
      results/<student>/NN_*.json   one grading result per student and notebook (`lablib grade`)
      feedback/<student>.html       per-student feedback (`lablib feedback`)
      grades.csv                    the exported grades (`lablib export`)
      release/
        backprop-lab/               what students get: notebooks, lablib/, data/, README.md
        backprop-lab.zip            the same folder as one file, for an LMS upload
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ASSIGNMENT_ID", "BUILD_ENV", "NOTEBOOK_GLOB",
    "repo_root", "source_notebooks", "source_notebooks_in", "build_root", "course_root", "release_root",
    "submitted_root", "results_root", "feedback_root", "grades_csv",
]

#: The one nbgrader assignment that holds every notebook of the lab.
ASSIGNMENT_ID = "backprop-lab"
#: Environment variable that moves the build folder (tests point it at a temporary folder).
BUILD_ENV = "LABLIB_BUILD"
#: The lab's notebooks are `notebooks/NN_name.ipynb`; anything else in that folder is not released.
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def repo_root() -> Path:
    """The checkout this lablib was imported from (the folder holding `notebooks/` and `lablib/`)."""
    return Path(__file__).resolve().parent.parent.parent


def source_notebooks(repo: Path | None = None) -> list[Path]:
    """The instructor notebooks, in order: `notebooks/NN_*.ipynb` of the checkout."""
    return sorted((repo or repo_root()).joinpath("notebooks").glob(NOTEBOOK_GLOB))


def build_root(build: str | os.PathLike | None = None) -> Path:
    """The build folder: `build` if given, else `$LABLIB_BUILD`, else `<repo>/build`; always absolute."""
    chosen = build or os.environ.get(BUILD_ENV) or repo_root() / "build"
    return Path(chosen).expanduser().resolve()


def course_root(build: str | os.PathLike | None = None) -> Path:
    """nbgrader's course root: `<build>/course`."""
    return build_root(build) / "course"


def release_root(build: str | os.PathLike | None = None) -> Path:
    """The student release: `<build>/release/<assignment>`."""
    return build_root(build) / "release" / ASSIGNMENT_ID


def submitted_root(build: str | os.PathLike | None = None) -> Path:
    """Collected submissions: `<build>/course/submitted/<student>/<assignment>/NN_*.ipynb`."""
    return course_root(build) / "submitted"


def results_root(build: str | os.PathLike | None = None) -> Path:
    """Grading results: `<build>/results/<student>/<notebook stem>.json`, one file per notebook."""
    return build_root(build) / "results"


def feedback_root(build: str | os.PathLike | None = None) -> Path:
    """Per-student feedback: `<build>/feedback/<student>.html`."""
    return build_root(build) / "feedback"


def grades_csv(build: str | os.PathLike | None = None) -> Path:
    """The exported grades: `<build>/grades.csv`."""
    return build_root(build) / "grades.csv"


def source_notebooks_in(folder: str | os.PathLike) -> list[Path]:
    """The lab's notebooks (`NN_*.ipynb`) in `folder`, in order."""
    return sorted(Path(folder).glob(NOTEBOOK_GLOB))
