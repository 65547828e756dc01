"""How a check report reads: failures first and without a traceback through lablib, text wrapped at
word boundaries, one line for a passing test cell, only the rows a cell grades."""

from __future__ import annotations

import re

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from lablib import Module, Parameter, check_layer
from lablib.gradcheck.report import TEXT_WIDTH, CheckReport, PassedChecks, check_failed

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class TransposedDW(Module):
    """A Linear whose dW is transposed: wrong only in dW (and only visible with square W)."""

    def __init__(self, d: int):
        self.W = Parameter(np.random.default_rng(0).standard_normal((d, d)))
        self.b = Parameter(np.zeros(d))

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        self.W.grad = (self.x.T @ dout).T
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T


@pytest.fixture(scope="module")
def report() -> CheckReport:
    return check_layer(TransposedDW(5), np.random.default_rng(1).standard_normal((4, 5)))


def test_a_failure_renders_as_its_diagnosis_without_a_traceback(report):
    with pytest.raises(AssertionError) as info:
        report.assert_ok("dW")
    lines = [ANSI.sub("", line) for line in info.value._render_traceback_()]
    assert lines[0] == "Check failed: dW"
    assert "transposed" in " ".join(lines[:6])  # the diagnosis within the first lines
    assert not any("Traceback" in line or "report.py" in line or "File " in line for line in lines)
    assert type(info.value) is AssertionError and "transposed" in str(info.value)  # pytest, the grader


def test_a_cell_sees_only_the_rows_it_grades(report):
    report.assert_ok("dx")  # dW failed, but this cell grades dx only
    with pytest.raises(AssertionError) as info:
        report.assert_ok("dW")
    rows = {line.split()[0] for line in str(info.value).splitlines()[2:] if line.startswith("  ") and not line.startswith("   ")}
    assert rows == {"dW"} and info.value.check.failed() == ["dW"]
    assert "dx" not in report.to_html(("dW",)) and "dx" in report.to_html()


def test_text_wraps_at_word_boundaries(report):
    text = report.to_text()
    for line in text.splitlines():
        assert len(line) <= TEXT_WIDTH, line
    words = " ".join(text.split())
    for problem in report.items["dW"].problems:
        assert " ".join(problem.split()) in words  # every word intact, none cut in two
    colored = report.to_text(color=True)
    assert ANSI.sub("", colored) == text


def test_a_finding_shared_by_several_rows_is_given_once():
    """One mistake failing several rows (a Sequential chaining its layers wrongly) is told in full on the
    first row and referred to on the others; each row keeps its own worst entry."""
    shared = "every layer passes check_layer on its own: the mistake is in how Sequential chains them."
    report = CheckReport("t")
    for name in ("dx", "dW", "db"):
        report.item(name).fail(shared)
        report.item(name).fail(f"worst entry {name}[0]: received 1, expected 2")
    for shown in (report.to_text(), report.to_html(), str(check_failed(report, ("dW", "db")))):
        flat = " ".join(shown.split())
        assert flat.count(shared) == 1, shown
        assert all(f"worst entry {name}[0]" in flat for name in ("dW", "db")), shown
    assert "the same finding as for dx, above." in report.to_text()
    assert report.items["db"].problems[0] == shared  # the data keeps it: only the rendering refers back


def test_a_long_unbreakable_word_is_kept_whole():
    report = CheckReport("t")
    report.item("x").fail("see " + "a" * 120 + " then more words")
    assert "a" * 120 in report.to_text()


def test_a_passing_cell_says_so_in_one_line():
    assert repr(PassedChecks(["dx"])) == "✓ passed: dx"
    many = PassedChecks([f"check number {i}" for i in range(20)])
    assert "\n" not in repr(many) and len(repr(many)) <= TEXT_WIDTH and "20" in repr(many)


SETUP = """
import numpy as np
from lablib import Module, Parameter, check_layer
class TransposedDW(Module):
    def __init__(self, d):
        self.W = Parameter(np.random.default_rng(0).standard_normal((d, d)))
        self.b = Parameter(np.zeros(d))
    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data
    def backward(self, dout):
        self.W.grad = (self.x.T @ dout).T
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T
report = check_layer(TransposedDW(5), np.random.default_rng(1).standard_normal((4, 5)))
"""


@pytest.mark.slow
def test_in_a_kernel_a_passing_cell_shows_one_line_and_a_failing_one_its_diagnosis():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell('"""dx."""\nreport.assert_ok("dx")\nreport.assert_ok("forward", "dx")'),
        nbformat.v4.new_code_cell('"""dW."""\nreport.assert_ok("dW")'),
        nbformat.v4.new_code_cell("x = 1  # no check: no line"),
    ])
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    setup, passing, failing, plain = nb.cells
    assert setup.outputs == [] and plain.outputs == []
    assert len(passing.outputs) == 1 and passing.outputs[0].output_type == "display_data"
    assert passing.outputs[0].data["text/plain"] == "✓ passed: dx, forward"
    assert "text/html" in passing.outputs[0].data
    (error,) = failing.outputs
    lines = [ANSI.sub("", line) for line in error.traceback]
    assert error.output_type == "error" and error.ename == "AssertionError"
    assert lines[0] == "Check failed: dW" and "transposed" in "\n".join(lines)
    assert not any("report.py" in line or "Traceback" in line for line in lines)
