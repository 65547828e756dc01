"""lablib.cells: running a notebook's cells in-process, as the self-check and the grading tests do."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from lablib import cells


def notebook(*sources, graded=()):
    nb = new_notebook()
    for i, source in enumerate(sources):
        cell = new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade_id": f"c{i}", "grade": i in graded, "points": 1 if i in graded else 0,
                                     "solution": False, "locked": True, "schema_version": 3}
        nb.cells.append(cell)
    return nb


def test_cells_share_a_namespace_and_a_failure_does_not_stop_the_rest():
    nb = notebook("%matplotlib inline\nx = 2", "assert x == 3, 'x is wrong'", "print(x * 21)", graded=(1,))
    results = cells.run_cells(nb)
    assert [r.passed for r in results.values()] == [True, False, True]
    assert results["c1"].error == "AssertionError: x is wrong" and results["c1"].points == 1
    assert results["c2"].output == "42\n"


def test_hidden_tests_can_be_left_out_and_answers_replaced():
    nb = notebook("y = 1", "assert y == 1\n### BEGIN HIDDEN TESTS\nassert y == 2\n### END HIDDEN TESTS\n", graded=(1,))
    assert not cells.run_cells(nb)["c1"].passed
    assert cells.run_cells(nb, hidden=False)["c1"].passed
    assert cells.run_cells(nb, replace={"c0": "y = 2"}, hidden=True)["c1"].error == "AssertionError"


def test_blank_solutions_matches_what_nbgrader_releases():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert cells.blank_solutions(source) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


def test_load_validates(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("1"), str(path))
    assert cells.load(path).cells[0].source == "1"


def test_a_cell_that_prints_forever_keeps_only_the_first_part():
    nb = notebook("for i in range(200_000):\n    print('line', i)")
    output = cells.run_cells(nb)["c0"].output
    assert len(output) < cells.OUTPUT_LIMIT + 200
    assert output.startswith("line 0\n") and "more characters of output not kept" in output
