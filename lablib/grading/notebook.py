"""Notebooks as grading sees them: reading a file, and the role nbgrader gives each cell.

The one place that knows nbgrader's cell metadata. The predicates `is_grade`, `is_solution`,
`is_task` and `is_locked` are nbgrader's own rules (nbgrader 0.9.6, `nbgrader/utils.py`), restated
here rather than imported because the student's release has no nbgrader and `lablib check` must
start without it; `tests/test_grading_vocabulary.py` proves they agree with nbgrader's on every cell of the
lab. On top of them, `role` names what each cell is to the lab:

    ANSWER   a solution code cell: the student's code (a solution region in the source)
    TEST     an autograded grade cell (code, not a solution): visible and hidden tests, points
    WRITTEN  a solution markdown grade cell (or a task): a written answer, graded by hand
    SETUP    the locked code cell with grade_id "setup": the imports, run before anything else
    LOCKED   any other code cell nbgrader knows (demos, training, plots)
    OTHER    markdown, or a cell nbgrader does not know (one the student added)

`read` needs only the standard library (nbformat validates as well when it is installed);
`outline` lists the test cells with their part and description, and the hand-graded points.
This module imports nothing else from `lablib.grading`.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Role", "Node", "read", "load", "grade_id", "points", "is_grade", "is_solution", "is_task", "is_locked",
    "role", "is_hand_graded", "TestCell", "WrittenCell", "Outline", "outline", "SETUP_ID", "NotebookError",
]

#: The grade_id of the imports cell every notebook starts with.
SETUP_ID = "setup"
#: The part a test cell belongs to when no markdown heading comes before it.
NO_PART = "(before the first heading)"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_DOCSTRING = re.compile(r'\s*(?:"""|\'\'\')(.*?)(?:"""|\'\'\'|$)', re.S)


class NotebookError(ValueError):
    """A file that is not a readable Jupyter notebook; the message says what is wrong in one line."""


class Role(str, enum.Enum):
    ANSWER = "answer"
    TEST = "test"
    WRITTEN = "written"
    SETUP = "setup"
    LOCKED = "locked"
    OTHER = "other"


class Node(dict):
    """A JSON object read as nbformat's NotebookNode is: keys are attributes too."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _nodes(value: Any) -> Any:
    if isinstance(value, dict):
        return Node({k: _nodes(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_nodes(v) for v in value]
    return value


def _meta(cell: Any) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_grade(cell: Any) -> bool:
    """nbgrader: a grade cell (it has points)."""
    return bool(_meta(cell).get("grade", False))


def is_solution(cell: Any) -> bool:
    """nbgrader: a solution cell (the student writes it)."""
    return bool(_meta(cell).get("solution", False))


def is_task(cell: Any) -> bool:
    """nbgrader: a task cell (graded by hand, never run)."""
    return bool(_meta(cell).get("task", False))


def is_locked(cell: Any) -> bool:
    """nbgrader: a cell whose source nbgrader restores when grading (not a solution)."""
    if "nbgrader" not in cell.get("metadata", {}) or is_solution(cell):
        return False
    return True if is_grade(cell) else bool(_meta(cell).get("locked", False))


def grade_id(cell: Any) -> str | None:
    return _meta(cell).get("grade_id")


def points(cell: Any) -> float:
    """The points of a grade or task cell (0 for any other)."""
    return float(_meta(cell).get("points", 0)) if is_grade(cell) or is_task(cell) else 0.0


def is_hand_graded(cell: Any) -> bool:
    """Points a person gives: a task, a graded markdown cell, or a graded solution cell."""
    return is_task(cell) or (is_grade(cell) and (is_solution(cell) or cell.get("cell_type") != "code"))


def role(cell: Any) -> Role:
    """What the cell is to the lab (module docstring). A hand-graded *code* answer is an ANSWER (it
    runs like any other), and `is_hand_graded` as well."""
    code = cell.get("cell_type") == "code"
    if code and is_solution(cell):
        return Role.ANSWER
    if is_hand_graded(cell):
        return Role.WRITTEN
    if not code:
        return Role.OTHER
    if is_grade(cell):
        return Role.TEST
    if grade_id(cell) == SETUP_ID:
        return Role.SETUP
    return Role.LOCKED if "nbgrader" in cell.get("metadata", {}) else Role.OTHER


def read(path: str | Path, *, validate: bool = True) -> Any:
    """Read a notebook file (nbformat 4) as attribute-accessible JSON; sources are strings.

    Raises NotebookError saying what is wrong (unreadable, not JSON, not a notebook). Validates
    against nbformat's schema as well when nbformat is installed (and `validate`).
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise NotebookError(f"cannot read the file ({err})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise NotebookError(f"the file is not valid JSON ({err}); was it saved completely, or edited "
                            "outside Jupyter?") from None
    if not isinstance(data, dict) or data.get("nbformat") != 4 or not isinstance(data.get("cells"), list) \
            or not all(isinstance(c, dict) and "cell_type" in c and "source" in c for c in data["cells"]):
        raise NotebookError("not a valid Jupyter notebook (expected nbformat 4 with a list of cells)")
    if validate:
        try:
            import nbformat  # the instructor's environment: the full schema
        except ImportError:
            nbformat = None
        if nbformat is not None:
            try:
                nbformat.validate(nbformat.from_dict(data))
            except Exception as err:  # noqa: BLE001 - any schema error is reported in one line
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise NotebookError(f"not a valid Jupyter notebook ({first})") from None
    nb = _nodes(data)
    for cell in nb.cells:
        if isinstance(cell.source, list):
            cell.source = "".join(cell.source)
    return nb


def load(path: str | Path) -> tuple[Any, str]:
    """(notebook, "") when `path` is a valid notebook, else (None, what is wrong in one line)."""
    try:
        return read(path), ""
    except NotebookError as err:
        return None, str(err)


@dataclass(frozen=True)
class TestCell:
    """An autograded test cell: where it is, its grade_id, part heading, description and points."""

    __test__ = False  # not a pytest test class

    index: int
    grade_id: str
    part: str
    description: str
    points: float


@dataclass(frozen=True)
class WrittenCell:
    """A cell graded by hand (a written answer or a task): where it is, its grade_id, part and points."""

    index: int
    grade_id: str
    part: str
    points: float
    question: str = ""  # the markdown cell just above it (the question), when there is one


@dataclass(frozen=True)
class Outline:
    """The graded cells of a notebook: the test cells in order, and the cells graded by hand."""

    tests: tuple[TestCell, ...]
    manual_points: float
    written_cells: tuple[WrittenCell, ...]

    @property
    def written(self) -> tuple[str, ...]:
        """The grade_ids of the written answers (and tasks), in notebook order."""
        return tuple(w.grade_id for w in self.written_cells)


def docstring_line(source: str) -> str:
    """The first line of the docstring a test cell opens with ("" if none): what the test checks."""
    doc = _DOCSTRING.match(source)
    return doc.group(1).strip().splitlines()[0] if doc and doc.group(1).strip() else ""


def outline(nb: Any) -> Outline:
    tests: list[TestCell] = []
    written: list[WrittenCell] = []
    manual, part = 0.0, NO_PART
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and not is_hand_graded(cell):  # an answer's own headings are no part
            headings = _HEADING.findall(cell.source)
            part = headings[-1] if headings else part
        if is_hand_graded(cell):
            manual += points(cell)
            above = nb.cells[index - 1] if index else None
            question = above.source.strip() if above is not None and above.cell_type == "markdown" \
                and not is_hand_graded(above) else ""
            written.append(WrittenCell(index, grade_id(cell) or f"cell-{index}", part, points(cell), question))
        elif role(cell) is Role.TEST:
            tests.append(TestCell(index, grade_id(cell) or f"cell-{index}", part, docstring_line(cell.source),
                                  points(cell)))
    return Outline(tuple(tests), manual, tuple(written))
