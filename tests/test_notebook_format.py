"""The source notebooks follow one cell grammar (nbgrader's own example assignment) everywhere."""

from __future__ import annotations

import re

import pytest

from conftest import SOURCE_NOTEBOOKS
from lablib import cells

NOTEBOOKS = [pytest.param(p, id=p.stem) for p in SOURCE_NOTEBOOKS]
PART_HEADING = re.compile(r"^## Part \w+ .*\((\d+) points?", re.M)


def meta(cell):
    return cell.metadata.get("nbgrader", {})


def test_there_are_notebooks():
    assert [p.stem for p in SOURCE_NOTEBOOKS][:2] == ["01_layers", "02_losses"]


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_committed_clean_with_stable_unique_ids(path):
    nb = cells.load(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{cell.id} carries outputs"
        if meta(cell):
            assert meta(cell)["grade_id"] == cell.id, "grade_id and cell id should be the same name"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_answer_cells_are_followed_by_their_tests(path):
    nb = cells.load(path)
    code = [c for c in nb.cells if c.cell_type == "code" and meta(c)]
    for i, cell in enumerate(code):
        if meta(cell).get("solution"):
            assert cells.SOLUTION_BEGIN in cell.source, f"{cell.id}: answer cell without a solution region"
            following = code[i + 1] if i + 1 < len(code) else None
            assert following is not None and meta(following).get("grade"), f"{cell.id} has no test cell after it"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_test_cells_open_with_a_docstring_and_carry_hidden_tests(path):
    for cell in cells.load(path).cells:
        if cell.cell_type == "code" and meta(cell).get("grade"):
            first = cell.source.splitlines()[0]
            assert re.fullmatch(r'""".+\."""', first), f"{cell.id}: first line should be a one-line docstring"
            assert cells.HIDDEN_BEGIN in cell.source and cells.HIDDEN_END in cell.source, f"{cell.id}: no hidden tests"
            assert meta(cell)["points"] > 0 and meta(cell)["locked"]


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_points_in_each_part_heading_match_its_cells(path):
    nb = cells.load(path)
    part, claimed, counted = None, {}, {}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            match = PART_HEADING.match(cell.source)
            part = cell.id if match else None
            if match:
                claimed[part], counted[part] = int(match.group(1)), 0
        if part and meta(cell).get("grade"):
            counted[part] += meta(cell)["points"]
    assert claimed, "no part headings with points"
    assert counted == claimed


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_written_questions_are_manually_graded_markdown(path):
    written = [c for c in cells.load(path).cells if c.cell_type == "markdown" and meta(c).get("grade")]
    assert written, "each notebook asks written questions"
    assert all(meta(c)["solution"] and meta(c)["points"] > 0 for c in written)


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_points_in_the_intro_table_and_the_readme_match_the_cells(path):
    """The points a student and an instructor read (the notebook's opening table, the README's
    table) are the points the cells carry."""
    nb = cells.load(path)
    graded = [c for c in nb.cells if meta(c).get("grade")]
    auto = sum(meta(c)["points"] for c in graded if c.cell_type == "code")
    written = sum(meta(c)["points"] for c in graded if c.cell_type == "markdown")
    readme = (path.parent.parent / "README.md").read_text()
    row = re.search(rf"^\| `{path.stem}` \|.*\| (\d+) \+ (\d+) written \|$", readme, re.M)
    assert row, f"README.md has no row for {path.stem}"
    assert (int(row[1]), int(row[2])) == (auto, written)
    intro = nb.cells[0].source
    table = [int(n) for n in re.findall(r"^\|[^|\n]+\|[^|\n]+\| (\d+) \|$", intro, re.M)]
    assert table, "the notebook opens with a table of its parts and their points"
    assert sum(table) == auto + written
