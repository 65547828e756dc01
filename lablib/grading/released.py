"""The test cells as released, so that the self-check runs what the grader runs.

The grader never runs a student's copy of a test cell: it runs the source's (`plan.py`), so a test
cell the student edited or deleted is restored at grading. A self-check that ran the student's copy
would then disagree with the grade (an edited `assert` passes here and fails there). So:

- `lablib release` writes `RELEASED_TESTS` (`.released_tests.json`) beside the released notebooks:
  per notebook, each test cell's grade_id, its visible source as released, and the grade_id of the
  graded cell above it (where to put it back if it was deleted). `write` does this.
- `lablib check` looks for that file beside the notebook, then beside the `lablib` it runs from
  (the release folder), and `restore`s the test cells it lists: an edited one gets its released
  source back, a deleted one is put back where it was. The check then runs the originals, as the
  grader will, and says which cells it restored.
- Without that file (a notebook taken out of its release folder), a test cell whose source no
  longer matches nbgrader's checksum in its own metadata (`checksum`, written by nbgrader's
  `generate_assignment`) is still noticed; it cannot be restored, so its result here would prove
  nothing: it is reported as failed, saying why and what to do. A deleted cell cannot be noticed
  without the file.

Needs neither nbgrader nor nbformat (the student's release runs it). Imports only `notebook`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import notebook
from .notebook import Role

__all__ = ["RELEASED_TESTS", "checksum", "write", "find", "Restored", "restore"]

#: The file, beside the released notebooks, that holds their test cells as released.
RELEASED_TESTS = ".released_tests.json"
#: Version of that file's layout.
_VERSION = 1


def checksum(cell: Any) -> str:
    """nbgrader's checksum of a grade or locked cell (`nbgrader.utils.compute_checksum`, restated:
    the release has no nbgrader; tests/test_grading_vocabulary.py proves they agree)."""
    m = hashlib.md5()
    for part in (cell.get("source", ""), cell.get("cell_type", ""), str(notebook.is_grade(cell)),
                 str(notebook.is_solution(cell)), str(notebook.is_locked(cell)), notebook.grade_id(cell) or ""):
        m.update(str(part).encode("utf-8"))
    if notebook.is_grade(cell):
        m.update(str(float(cell["metadata"]["nbgrader"]["points"])).encode("utf-8"))
    return m.hexdigest()


def _tests_of(nb: Any) -> list[dict[str, Any]]:
    out, above = [], None
    for cell in nb.cells:
        gid = notebook.grade_id(cell)
        if notebook.role(cell) is Role.TEST and gid:
            out.append({"grade_id": gid, "source": cell.source, "points": notebook.points(cell), "after": above})
        if gid:
            above = gid
    return out


def write(folder: Path, notebooks: Iterable[Path]) -> Path:
    """Write `folder/RELEASED_TESTS` from the released `notebooks` (hidden tests already removed)."""
    data = {"version": _VERSION,
            "notebooks": {Path(p).name: _tests_of(notebook.read(p, validate=False)) for p in notebooks}}
    path = Path(folder) / RELEASED_TESTS
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def find(path: Path) -> list[dict[str, Any]] | None:
    """The released test cells of notebook `path`: from the file beside it, else beside the `lablib`
    package that runs (the release folder). None when neither has this notebook (or is unreadable)."""
    here = Path(__file__).resolve().parent.parent.parent
    for folder in dict.fromkeys([Path(path).resolve().parent, here]):
        try:
            data = json.loads((folder / RELEASED_TESTS).read_text(encoding="utf-8"))
            tests = data["notebooks"][Path(path).name] if data.get("version") == _VERSION else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(tests, list):
            return tests
    return None


@dataclass
class Restored:
    """What `restore` did to a notebook. edited / deleted: test cells put back to their released
    source (grade_ids, in notebook order); unverified: edited test cells that could not be restored
    (no released copy; noticed by their nbgrader checksum)."""

    edited: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    #: grade_id -> the first line of the released test's docstring: JupyterLab shows a student the
    #: cell, not its grade_id, so the notes name both.
    descriptions: dict[str, str] = field(default_factory=dict)

    def _names(self, ids: list[str]) -> str:
        return ", ".join(f'{gid} ("{self.descriptions[gid]}")' if self.descriptions.get(gid) else gid for gid in ids)

    @property
    def changed(self) -> bool:
        """The notebook that runs is not the student's file as saved."""
        return bool(self.edited or self.deleted or self.duplicated)

    def notes(self) -> list[str]:
        """What the student should be told, one line per kind of change."""
        out = []
        for kind, cells_ in (("edited", self.edited), ("deleted", self.deleted)):
            if cells_:
                s = "s" if len(cells_) > 1 else ""
                it = "them" if s else "it"
                out.append(f"test cell{s} {self._names(cells_)} {'were' if s else 'was'} {kind} in your notebook: the "
                           f"grader runs the original{s}, and so did this check; to run {it} in your notebook too, "
                           f"copy {it} back from a fresh copy of the notebook (or from {RELEASED_TESTS})")
        if self.duplicated:
            s = "s" if len(self.duplicated) > 1 else ""
            out.append(f"test cell{s} {self._names(self.duplicated)} appear{'' if s else 's'} more than once in your "
                       f"notebook: the grader runs each test cell once, and so did this check (it skipped the copies)")
        if self.unverified:
            s = "s" if len(self.unverified) > 1 else ""
            out.append(f"test cell{s} {', '.join(self.unverified)} {'were' if s else 'was'} edited in your notebook "
                       f"(nbgrader's checksum no longer matches): the grader runs the original{s}, which this check "
                       f"could not find ({RELEASED_TESTS} is not beside this notebook), so {'they count' if s else 'it counts'} "
                       "as failed here; restore the original cell (from a fresh copy of the notebook) to check it")
        return out


#: The failure message of a test cell that was edited and could not be restored.
UNVERIFIED_ERROR = ("this test cell was edited (nbgrader's checksum no longer matches) and the original was not "
                    "found to run instead; the grader runs the original, so passing your edited copy proves "
                    "nothing: restore the original cell")


def _test_metadata(test: dict[str, Any]) -> notebook.Node:
    return notebook.Node(nbgrader=notebook.Node(grade=True, solution=False, locked=True, grade_id=test["grade_id"],
                                                points=test["points"]))


def restore(nb: Any, released: list[dict[str, Any]] | None) -> tuple[Any, Restored]:
    """(`nb` with its test cells as released, what changed); `nb` itself is not modified.

    With `released` (from `find`), every listed test cell gets its released source and points back
    (edited), and a deleted one is inserted after the cell holding the grade_id that was above it
    (else at the top); a second cell with a listed grade_id (a copied test cell) is dropped, as the
    grader counts each test once. Without it, the test cells whose checksum no longer matches are
    `unverified`.
    """
    done = Restored()
    nb = copy.deepcopy(nb)
    if released is None:
        for cell in nb.cells:
            recorded = cell.get("metadata", {}).get("nbgrader", {}).get("checksum")
            if notebook.role(cell) is Role.TEST and recorded and checksum(cell) != recorded:
                done.unverified.append(notebook.grade_id(cell) or "?")
        return nb, done
    for test in released:
        gid = test["grade_id"]
        done.descriptions[gid] = notebook.docstring_line(test["source"])
        copies = [c for c in nb.cells if notebook.grade_id(c) == gid and c.get("cell_type") == "code"]
        if len(copies) > 1:
            nb.cells = [c for c in nb.cells if not any(c is extra for extra in copies[1:])]
            done.duplicated.append(gid)
        mine = copies[0] if copies else None
        if mine is not None:
            if mine.source != test["source"] or notebook.role(mine) is not Role.TEST \
                    or notebook.points(mine) != float(test["points"]):
                mine.source = test["source"]
                mine["metadata"] = notebook.Node({**mine.get("metadata", {}), **_test_metadata(test)})
                done.edited.append(gid)
            continue
        above = [i for i, c in enumerate(nb.cells) if test["after"] is not None and notebook.grade_id(c) == test["after"]]
        nb.cells.insert(above[0] + 1 if above else 0, notebook.Node(
            cell_type="code", source=test["source"], outputs=[], execution_count=None, metadata=_test_metadata(test)))
        done.deleted.append(gid)
    return nb, done
