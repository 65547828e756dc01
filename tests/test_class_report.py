"""`lablib report`: the class page built from stored results, without regrading (the class report;
test_report.py is about the gradcheck report)."""

from __future__ import annotations

import base64
import re

from lablib.cli import main
from lablib.grading import paths
from lablib.grading.report import build_report, diagnosis_key, render
from lablib.grading.results import NotebookResult, Status, TestResult, load_results, save_result

TRANSPOSED = ("check_layer: Linear(in_features=5, out_features=5) on x of shape (4, 5)\n"
              "  dW  FAILED  max scaled error 9.2e-01 > 1e-06 (all 25 entries)\n"
              "      -> dW is transposed: received[i, j] ≈ expected[j, i]. Square matrices hide this.\n"
              "      -> worst entry dW[4, 2]: received -0.299698, expected 2.06067")
AVERAGED = ("check_layer: Linear(in_features=3, out_features=2) on x of shape ({n}, 3)\n"
            "      -> worst entry dW[0, 0]: received 0.6, expected 2.5\n"
            "      -> dW is {n} times too small: did you average over the batch?")


def result(student: str, dw_error: str | None, status: Status = Status.GRADED, **extra) -> NotebookResult:
    tests = [TestResult("test_linear_forward", "Linear", "forward values", 1.0, Status.PASSED),
             TestResult("test_linear_dW", "Linear", "dW against the numeric gradient", 2.0,
                        Status.FAILED if dw_error else Status.PASSED, dw_error)]
    return NotebookResult("01_layers.ipynb", status, student=student, tests=tests, **extra)


def test_diagnosis_key_groups_the_same_mistake():
    assert diagnosis_key(TRANSPOSED) == "dW is transposed: received[i, j] ≈ expected[j, i]"
    wrapped = ("check_layer: Linear\n  dscores  FAILED  max scaled error 9.2e-01 > 1e-06\n"
               "          -> dscores is N = 4 times too large (N is the batch size): the loss is the\n"
               "             mean over the batch, so its gradient carries a factor 1/N\n"
               "          -> worst entry dscores[0, 1]: received 2, expected 0.5")
    assert diagnosis_key(wrapped) == ("dscores is N = # times too large (N is the batch size): the loss is the "
                                      "mean over the batch, so its gradient carries a factor #/N")
    assert diagnosis_key(AVERAGED.format(n=4)) == diagnosis_key(AVERAGED.format(n=7)) == \
        "dW is # times too small: did you average over the batch?"
    unnamed = ("check_layer: Sequential() on x of shape (4, 3)\n  dx  ok  max scaled error 4.7e-11\n"
               "  dlayers[0].w  FAILED  max scaled error 4.8e-01 > 1e-06 (all 3 entries)\n"
               "      -> worst entry dlayers[0].w[0]: received -2.074, expected -1.07128\n"
               "  dlayers[1].w  FAILED  max scaled error 1.2e-01 > 1e-06 (all 3 entries)")
    assert diagnosis_key(unnamed) == "dlayers[#].w: wrong values (no known mistake recognised)"
    assert diagnosis_key("your code raised ValueError: shapes (4,3) and (2,2) not aligned") == \
        "your code raised ValueError: shapes (#,#) and (#,#) not aligned"


def test_report_counts_pass_rates_diagnoses_and_flags(tmp_path):
    root = paths.results_root(tmp_path)
    class_ = [result(f"t{i}", TRANSPOSED) for i in range(3)] + [result(f"a{i}", AVERAGED.format(n=i + 2))
                                                                for i in range(2)]
    class_ += [result("ok", None), result("slow", None, Status.TIMED_OUT, message="stopped after 300 s"),
               result("cheat", AVERAGED.format(n=3), in_kernel_score=3.0, in_kernel_status=Status.COMPLETE,
                      disagreements=["test_linear_dW"],
                      in_kernel_tests={"test_linear_forward": Status.PASSED, "test_linear_dW": Status.PASSED}),
               NotebookResult("01_layers.ipynb", Status.MISSING, student="gone",
                              tests=[TestResult("test_linear_forward", "Linear", "", 1.0)])]
    for r in class_:
        save_result(root, r)
    rep = build_report(load_results(root))
    assert len(rep.students) == len(class_) and rep.totals["ok"] == 3.0 and rep.totals["t0"] == 1.0
    cells = {c.grade_id: c for c in rep.cells}
    assert (cells["test_linear_dW"].passed, cells["test_linear_dW"].graded) == (2, 8)  # "gone" is not counted
    assert rep.diagnoses[0] == ("dW is # times too small: did you average over the batch?", 3, ["test_linear_dW"])
    assert rep.diagnoses[1][:2] == ("dW is transposed: received[i, j] ≈ expected[j, i]", 3)
    flagged = {s: why for s, _, why in rep.flagged}
    assert set(flagged) == {"slow", "cheat"} and "timed out" in flagged["slow"] and "tampering" in flagged["cheat"]

    code = main(["report", "--build", str(tmp_path)])
    page = (tmp_path / "report.html").read_text()
    assert code == 0 and "dW is # times too small" in page and "2/8 (25 %)" in page
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(png).startswith(b"\x89PNG")


def test_report_escapes_what_students_wrote():
    page = render(build_report({"x": {"01_layers.ipynb": result("<b>x</b>", "<script>alert(1)</script>")}}))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_report_without_results_says_so(tmp_path, capsys):
    assert main(["report", "--build", str(tmp_path)]) == 1
    assert "nothing graded yet" in capsys.readouterr().err
