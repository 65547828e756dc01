"""What a student sees when a graded cell fails, in a real kernel: the diagnosis once.

A failing `assert_ok` renders itself as the diagnosis of the rows the cell grades (see
lablib/gradcheck/report.py). A cell that also displays the report shows every sentence twice (and
rows it does not grade). Each notebook here runs in a kernel as the student has it (hidden tests
removed) with a wrong answer that fails cells whose checks produce a report; every failing cell must
show each diagnosis sentence once, in its error (a finding shared by several rows it grades is given
in full on the first), and display no report beside it.
"""

from __future__ import annotations

import copy
import re

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import NOTEBOOKS, graded_cell_ids, load_notebook
from lablib import cells
from test_notebook_grading import ANSWERS, NEEDED, answer_source

ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: stem: (answer cell, text in the solution, wrong replacement, graded cells that fail with a report)
WRONG = {
    "01_layers": ("linear", "self.W.grad = self.x.T @ dout", "self.W.grad = self.x.T @ dout * len(dout)",
                  {"test_linear_dW"}),
    "02_losses": ("cross_entropy", "return dscores / n", "return dscores", {"test_cross_entropy_backward"}),
    "03_backprop": ("two_layer", "    dscores /= n  # (N, C): (P - Y) / N\n", "",
                    {"test_two_layer_dW1", "test_two_layer_db1", "test_two_layer_dW2", "test_two_layer_db2"}),
    "04_training": ("sequential", "for layer in reversed(self.layers):\n            dout",
                    "for layer in self.layers:\n            dout", {"test_sequential_backward"}),
}


def student_notebook(stem: str, answer: str, source: str):
    """The cells the graded ones need, the answer cells (one replaced by `source`) and the graded
    cells without their hidden tests; demos and training runs are left out."""
    nb = copy.deepcopy(load_notebook(stem))
    graded = set(graded_cell_ids(stem))
    ANSWERS.setdefault(stem, {cells.grade_id(c) for c in nb.cells
                              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")})
    kept = []
    for cell in nb.cells:
        gid = cells.grade_id(cell) if cell.cell_type == "code" else None
        if gid == answer:
            cell.source = source
        elif gid in graded:
            cell.source = cells.strip_hidden_tests(cell.source)
        elif gid not in NEEDED and gid not in ANSWERS[stem]:
            continue
        kept.append(cell)
    nb.cells = kept
    return nb


def diagnoses(error) -> list[str]:
    """The diagnosis sentences ("-> ...") of an error output, each on one line."""
    text = "\n".join(ANSI.sub("", line) for line in error.traceback)
    return [" ".join(s.split()) for s in re.split(r"^\s*-> ", text, flags=re.M)[1:]]


def shown_besides(cell) -> str:
    """Everything a cell shows other than its error, whitespace made one space."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts += [str(v) for v in out.data.values()]
    return " ".join(" ".join(parts).split())


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(WRONG))
def test_a_failing_cell_shows_its_diagnosis_once(stem):
    answer, old, new, failing = WRONG[stem]
    solution = answer_source(stem, answer)
    assert solution.count(old) == 1
    nb = student_notebook(stem, answer, solution.replace(old, new))
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    by_id = {cells.grade_id(c): c for c in nb.cells}
    for gid in failing:
        cell = by_id[gid]
        errors = [out for out in cell.outputs if out.output_type == "error"]
        assert len(errors) == 1 and errors[0].ename == "AssertionError", (gid, cell.outputs)
        sentences = diagnoses(errors[0])
        assert sentences, (gid, errors[0].traceback)
        full = [s for s in sentences if not s.startswith("the same finding")]
        assert len(full) == len(set(full)), f"{gid} repeats a finding in its error: {full}"
        besides = shown_besides(cell)
        assert "FAILED" not in besides, f"{gid} displays a report beside its error:\n{besides}"
        for sentence in sentences:
            assert sentence[:60] not in besides, f"{gid} shows twice: {sentence}"
