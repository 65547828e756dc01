"""`lablib release`: the student version of every notebook, and what a student needs to run it.

Steps:
1. copy `notebooks/NN_*.ipynb` into nbgrader's `source/backprop-lab/` (replacing what was there);
2. run `nbgrader generate_assignment backprop-lab --force` with the repository as working
   directory, so that nbgrader reads the course configuration `nbgrader_config.py`;
3. assemble `<build>/release/backprop-lab/`: the released notebooks, a copy of the `lablib/`
   source tree and of `data/README.md` + `data/checksums.json` beside it, `requirements.txt`, a
   student `README.md`, and `.released_tests.json` (the test cells as released, which the self-check
   restores when a student edited or deleted one: `released.py`); and the same folder as `backprop-lab.zip`.

The lablib tree is shipped as source next to the notebooks, in the layout of the repository, and
not as a wheel: JupyterLab starts each kernel in the notebook's folder, so `import lablib` finds it
without an install, and `lablib.data` finds `data/checksums.json` (and keeps its download cache) at
`Path(lablib.__file__).parent.parent / "data"`, as it does in a checkout. In a wheel installed into
site-packages that path would not exist.

Re-running replaces the previous output: the new release is assembled in a temporary folder and
swapped in only when complete. The gradebook is kept (it will hold grades).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import notebook, paths
from . import released as released_tests
from .check import CHECK_PROFILE, CHECK_TIMEOUT_S

__all__ = ["ReleaseError", "Release", "release", "student_requirements"]

#: Dependencies of the repository that only instructors and CI need; students don't install them.
INSTRUCTOR_ONLY = ("nbgrader", "nbval", "pytest")
#: Files of data/ a student needs (the checksums for the verified download, and how to get the data).
DATA_FILES = ("README.md", "checksums.json")
#: The folder of data/ holding the small sample of Fashion-MNIST that `lablib check` trains on.
DATA_SAMPLE = "sample"
#: What never goes into the student's copy of lablib.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
#: How many lines of nbgrader's log an error message quotes.
LOG_TAIL_LINES = 25


class ReleaseError(RuntimeError):
    """The release could not be made; the message says why (and quotes nbgrader where it failed)."""


@dataclass
class Release:
    """What `release()` produced.

    folder: the student release (`<build>/release/backprop-lab`). archive: the same as a zip.
    notebooks: the released notebooks, in order. course: nbgrader's course root.
    """

    folder: Path
    archive: Path
    notebooks: list[Path]
    course: Path

    def to_text(self) -> str:
        names = ", ".join(nb.name for nb in self.notebooks)
        return "\n".join([
            f"Released {len(self.notebooks)} notebook(s): {names}",
            f"  student folder: {self.folder}",
            f"  zip for the LMS: {self.archive}",
            f"  nbgrader course: {self.course}",
        ])


def student_requirements(repo: Path) -> list[str]:
    """The repository's runtime dependencies (pyproject.toml) minus the instructor-only tools."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from importlib.metadata import requires

        declared = [r for r in (requires("backprop-lab") or []) if "extra ==" not in r]
    else:
        declared = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    name = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
    return [r for r in declared if name.match(r).group(1).lower() not in INSTRUCTOR_ONLY]


def _readme(notebooks: list[Path]) -> str:
    listing = "\n".join(f"- `{nb.name}`" for nb in notebooks)
    first = notebooks[0].name
    pad_all = " " * (len(first) - 1)
    return f"""# Backprop Lab

You build a multilayer perceptron from scratch in NumPy, one notebook at a time:

{listing}

This folder holds the notebooks, `lablib/` (the helper package the notebooks import: base
classes, gradient checkers, data loading, plots) and `data/` (where the data sets are kept).
Keep them together: the notebooks find `lablib` because it sits next to them.

## Install (once)

You need Python 3.10 or newer. In a terminal, in this folder:

```bash
python -m venv .venv
source .venv/bin/activate            # Windows: .venv\\Scripts\\activate
python -m pip install -r requirements.txt
```

There is nothing else to install: `lablib` is used from this folder as it is.

## Work

```bash
jupyter lab
```

Open the notebooks in order. Write your code where a cell says `# YOUR CODE HERE` (and delete the
`raise NotImplementedError()` below it), write your answers where a cell says `YOUR ANSWER HERE`,
and run the test cell under each answer: it tells you what is wrong, by how much, and the likely
mistake. Don't delete, rename or retype the test cells, and don't rename the notebooks: the grader
relies on them, and runs the original test cells whatever you change in yours (so does the check
below: it restores them from `{released_tests.RELEASED_TESTS}` and tells you so).

## Check your work

Save your notebooks, then, in this folder:

```bash
python -m lablib check .{pad_all}   # every notebook in this folder
python -m lablib check {first}   # one notebook
```

Or, inside JupyterLab, in a new cell at the end of a notebook (save it first):

```python
import lablib
lablib.self_check()
```

which shows the same check of that notebook as a table. The check runs each notebook's code from top to bottom in a fresh process (what is saved on disk,
not what your open notebook has in memory) and lists, part by part, each test cell: passed or
failed, its points, and for a failure the first lines of the message. Only the tests you can see
are run: the grader also runs hidden tests (other shapes, batch size 1, values at kinks, float32),
so full marks here are necessary but not sufficient. Written answers are graded by hand. Training
cells run with the small `{CHECK_PROFILE}` budget profile (a fraction of the data, few epochs), so the check
takes seconds; your real training runs when you run the notebook. A notebook that runs longer than
{CHECK_TIMEOUT_S:g} seconds is stopped and reported as timed out (`--timeout SECONDS` changes that).
The command exits with status 1 when anything failed.

## Data

The training notebooks use Fashion-MNIST. `python -m lablib.data fetch fashion-mnist` downloads it
into `data/` (checksum-verified); the notebooks also download it on first use. See `data/README.md`.

## Submit

Hand in the notebooks (`.ipynb` files) as your instructor asks.
"""


def _run_nbgrader(repo: Path, build: Path) -> str:
    """`nbgrader generate_assignment <assignment> --force` in `repo`; returns its log."""
    env = dict(os.environ)
    env[paths.BUILD_ENV] = str(build)
    # nbgrader's gradebook runs the `alembic` executable by name: make this interpreter's scripts
    # folder (a virtual environment's bin/) findable even when that environment is not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [sys.executable, "-m", "nbgrader", "generate_assignment", paths.ASSIGNMENT_ID, "--force"]
    proc = subprocess.run(command, cwd=repo, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-LOG_TAIL_LINES:])
        raise ReleaseError(f"nbgrader generate_assignment failed (exit status {proc.returncode}):\n{tail}")
    return proc.stdout


def _check_readable(notebooks: list[Path]) -> None:
    for nb in notebooks:
        try:
            notebook.read(nb)
        except notebook.NotebookError as err:
            raise ReleaseError(f"{nb} is not a valid notebook: {err}") from None


def release(build: str | os.PathLike | None = None, *, repo: str | os.PathLike | None = None) -> Release:
    """Generate the student release of every notebook of `repo` (default: this checkout).

    Inputs:
        build: the build folder (default `$LABLIB_BUILD`, else `<repo>/build`).
        repo: the checkout holding `notebooks/`, `lablib/`, `data/` and `nbgrader_config.py`.
    Returns:
        a Release naming what was written. Raises ReleaseError when anything is missing or
        nbgrader fails; the previous student folder and zip are then left as they were.
    The course's `source/backprop-lab/` is generated from `notebooks/` each time: edit the notebooks,
    never that copy.
    """
    repo = Path(repo).resolve() if repo else paths.repo_root()
    build = paths.build_root(build)
    for needed in ("nbgrader_config.py", "lablib", "notebooks"):
        if not (repo / needed).exists():
            raise ReleaseError(f"{repo} is not a Backprop Lab checkout: it has no {needed}. "
                               "`lablib release` runs from the instructor's repository.")
    notebooks = paths.source_notebooks(repo)
    if not notebooks:
        raise ReleaseError(f"no notebooks matching {paths.NOTEBOOK_GLOB} in {repo / 'notebooks'}")
    _check_readable(notebooks)

    course = build / "course"
    source = course / "source" / paths.ASSIGNMENT_ID
    generated = course / "release" / paths.ASSIGNMENT_ID
    for stale in (source, generated):
        shutil.rmtree(stale, ignore_errors=True)
    source.mkdir(parents=True)
    for nb in notebooks:
        shutil.copy2(nb, source / nb.name)
    _run_nbgrader(repo, build)
    released = [generated / nb.name for nb in notebooks]
    missing = [p for p in released if not p.is_file()]
    if missing:
        raise ReleaseError(f"nbgrader reported success but did not write {', '.join(map(str, missing))}; "
                           f"is another nbgrader_config.py overriding CourseDirectory.root = {course}?")

    out_parent = build / "release"
    out_parent.mkdir(parents=True, exist_ok=True)
    for leftover in out_parent.glob(f".{paths.ASSIGNMENT_ID}.*"):  # from a release that was interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{paths.ASSIGNMENT_ID}.", dir=out_parent))
    try:
        stage = staging / paths.ASSIGNMENT_ID
        stage.mkdir()
        for nb in released:
            shutil.copyfile(nb, stage / nb.name)
        released_tests.write(stage, released)  # what the self-check restores, as the grader does
        shutil.copytree(repo / "lablib", stage / "lablib", ignore=_IGNORE)
        (stage / "data").mkdir()
        for name in DATA_FILES:
            shutil.copyfile(repo / "data" / name, stage / "data" / name)
        # the checksummed sample the ci and grade profiles read (the self-check runs offline)
        shutil.copytree(repo / "data" / DATA_SAMPLE, stage / "data" / DATA_SAMPLE, ignore=_IGNORE)
        (stage / "requirements.txt").write_text("\n".join(student_requirements(repo)) + "\n")
        (stage / "README.md").write_text(_readme(notebooks))
        zipped = shutil.make_archive(str(staging / paths.ASSIGNMENT_ID), "zip", root_dir=staging,
                                     base_dir=paths.ASSIGNMENT_ID)

        folder, archive = out_parent / paths.ASSIGNMENT_ID, out_parent / f"{paths.ASSIGNMENT_ID}.zip"
        shutil.rmtree(folder, ignore_errors=True)
        stage.rename(folder)
        os.replace(zipped, archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Release(folder=folder, archive=archive, notebooks=[folder / nb.name for nb in notebooks],
                   course=course)
