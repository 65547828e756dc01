"""The feedback page shows what a TA gave in formgrader: written answers, scores, comments (unit level;
tests/test_grading.py enters them through nbgrader's Gradebook API end to end)."""

from __future__ import annotations

from lablib.grading.feedback import HandGrading, render
from lablib.grading.gradebook import CellReview
from lablib.grading.notebook import Outline, TestCell, WrittenCell
from lablib.grading.results import NotebookResult, Status, TestResult

NAME = "01_layers.ipynb"
OUTLINE = Outline(
    tests=(TestCell(1, "test_a", "Part A", "A works", 1.0), TestCell(2, "test_b", "Part A", "B works", 2.0)),
    manual_points=3.0,
    written_cells=(WrittenCell(4, "q_one", "Part F", 2.0, "**F1 (2 points).** Why?"),
                   WrittenCell(6, "q_two", "Part F", 1.0, "**F2 (1 point).** How does `np.log` <b>fail</b>?")),
)
RESULT = NotebookResult(NAME, Status.GRADED, student="ada", manual_points=3.0, tests=[
    TestResult("test_a", "Part A", "A works", 1.0, Status.PASSED),
    TestResult("test_b", "Part A", "B works", 2.0, Status.FAILED, error="dW is 2 times too large")])


def page(cells: dict[str, CellReview], answers: dict[str, str] | None = None) -> str:
    hand = HandGrading(cells, answers if answers is not None else {"q_one": "Because <b>.", "q_two": "So."})
    return render("ada", {NAME: RESULT}, [NAME], {NAME: OUTLINE}, {NAME: hand})


def test_an_answer_not_graded_yet_says_so_and_the_graded_one_shows_score_and_comment():
    text = page({"q_one": CellReview("q_one", 2.0, None, 1.5, 1.5, comment="Half right: see *eq. 3*."),
                 "q_two": CellReview("q_two", 1.0)})
    assert "Score: 1.5 / 2" in text and "Half right: see *eq. 3*." in text
    assert "Score: not graded yet (1 point)" in text and "1 of 2 not graded yet" in text
    assert "Because &lt;b&gt;." in text and "<b>." not in text  # the student's answer, escaped
    # the question above it, its markdown rendered as in the notebook (TA review: raw ** and backticks)
    assert "<strong>F1 (2 points).</strong> Why?" in text
    assert "<code>np.log</code> &lt;b&gt;fail&lt;/b&gt;?" in text  # raw HTML in a question is shown, not run
    assert "Written answers, graded by hand: <b>1.5 / 3</b> (1 answer not graded yet)." in text
    assert "Total: <b>2.5 / 6</b> so far." in text
    assert "dW is 2 times too large" in text and "1 / 3 points" in text  # the autograded parts as before


def test_a_ta_score_on_a_test_cell_and_a_comment_on_code_are_shown():
    text = page({"test_b": CellReview("test_b", 2.0, 0.0, 1.0, 1.0),
                 "linear": CellReview("linear", comment="Vectorize the loop."),
                 "q_one": CellReview("q_one", 2.0, 0.0, None, 0.0, comment="No response."),
                 "q_two": CellReview("q_two", 1.0, None, 1.0, 1.5, extra_credit=0.5)})
    assert "0 / 2 (changed by the TA to 1 / 2)" in text
    # the TA's change counts in the part, the notebook and the total, as in grades.csv (TA review: the page
    # said 'Automatically graded points: 0 / 56' while grades.csv said 1)
    assert "Part A (2 / 3)" in text and "01_layers.ipynb: 2 / 3 points" in text
    assert "Automatically graded points: <b>2 / 3</b>" in text
    assert "Total: <b>3.5 / 6</b>." in text  # 1 + 1 (the TA) + 0 + 1.5 (extra credit included)
    assert "Comments on your code" in text and "<b>linear</b>: <span class=\"typed\">Vectorize the loop.</span>" in text
    assert "Score: 0 / 2" in text and "No response." in text and "Score: 1.5 / 1 (extra credit 0.5)" in text
    assert "not graded yet" not in text


def test_without_the_gradebook_the_written_answers_are_only_announced():
    text = render("ada", {NAME: RESULT}, [NAME])
    assert "Written answers (3 points) are graded by hand and not included." in text
    assert "Your answer" not in text and "graded by hand:" not in text


def test_an_answer_missing_from_autograded_is_named_not_invented():
    text = page({"q_one": CellReview("q_one", 2.0, None, 2.0, 2.0)}, answers={})
    assert text.count("(your answer is not shown here)") == 2
