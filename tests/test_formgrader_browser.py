"""Formgrader in a real browser: the instructor's lab shows the graded submissions with their scores,
and a submission's manual-grading page shows the written answers next to the autograded tests.
The server is the README's `bash scripts/lab.sh --instructor`.

Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python; skipped cleanly
where either is missing (`pip install -e .[browser]`; CI installs both). Screenshots go to
build/screenshots/.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from answer_variants import LAYER_MISTAKES
from conftest import ROOT
from grading_helpers import answers, write_notebook, written_ids
from lab_server import SCREENSHOTS, jupyter_server, launch_chromium, playwright_or_skip
from lablib.grading import paths

#: Seconds the server gets to start, and a page to show what it should.
SERVER_START_S, PAGE_S = 90, 60

sync_api = playwright_or_skip()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """release → collect → grade of two students (01_layers only); returns (build, results)."""
    from lablib.grading.autograde import grade
    from lablib.grading.collect import collect
    from lablib.grading.release import release

    base = tmp_path_factory.mktemp("formgrader")
    build, source = base / "build", base / "submissions"
    release(build)
    released = paths.course_root(build) / "release" / paths.ASSIGNMENT_ID
    written = {gid: f"My answer to {gid}." for gid in written_ids("01_layers")}
    write_notebook(source / "ada", "01_layers", {**answers("01_layers", "solution"), **written}, released)
    wrong = answers("01_layers", mistakes=[LAYER_MISTAKES["linear: averages dW over the batch"]])
    write_notebook(source / "bob", "01_layers", wrong, released)
    collect(source, build)
    run = grade(build, jobs=2, progress=False, in_kernel=False)
    assert run.gradebook.startswith("Recorded"), run.gradebook
    return base, build, {r.student: r for r in run.results if r.notebook == "01_layers.ipynb"}


@pytest.fixture(scope="module")
def server(graded_class):
    base, build, _ = graded_class
    # the README's instructor command, with this test's venv and build folder
    env = {**os.environ, paths.BUILD_ENV: str(build), "LABLIB_SKIP_INSTALL": "1",
           "LABLIB_VENV": str(Path(sys.executable).parent.parent)}
    with jupyter_server(["bash", str(ROOT / "scripts" / "lab.sh"), "--instructor"], cwd=ROOT, env=env,
                        log=base / "server.log", start_s=SERVER_START_S) as server:
        yield server


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            # the token on every request, the pages' own API calls included (as a logged-in TA's cookie would)
            context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                          extra_http_headers={"Authorization": f"token {server[1]}"})
            page = context.new_page()
            page.set_default_timeout(PAGE_S * 1000)
            yield page
        finally:
            browser.close()


def test_formgrader_lists_the_graded_submissions_with_their_scores(server, page, graded_class):
    url, _ = server
    _, _, results = graded_class
    page.goto(f"{url}/formgrader/manage_submissions/{paths.ASSIGNMENT_ID}")
    page.wait_for_selector("td.score:has-text('/')")
    rows = {}
    for row in page.query_selector_all("#main-table tr"):
        sid, score = row.query_selector("td.student-id"), row.query_selector("td.score")
        if sid and score:
            rows[sid.inner_text().strip()] = score.inner_text().strip()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "formgrader-submissions.png"), full_page=True)
    assert set(rows) == {"ada", "bob"}, rows
    for student, result in results.items():  # only 01_layers was submitted: its autograded points
        assert rows[student].split(" / ")[0] == f"{result.earned:g}", (student, rows[student])
    assert results["ada"].earned > results["bob"].earned
    base = graded_class[0]
    assert "not a subdirectory of the notebook server root" not in (base / "server.log").read_text()


def test_manual_grading_shows_written_answers_next_to_the_scored_tests(server, page, graded_class):
    from nbgrader.api import Gradebook

    from lablib.grading.gradebook import db_url

    url, _ = server
    _, build, _ = graded_class
    with Gradebook(db_url(build)) as gb:
        ids = {s: gb.find_submission_notebook("01_layers", paths.ASSIGNMENT_ID, s).id for s in ("ada", "bob")}
    page.goto(f"{url}/formgrader/gradebook/{paths.ASSIGNMENT_ID}/01_layers")
    page.wait_for_selector("text=needs manual grade")
    page.screenshot(path=str(SCREENSHOTS / "formgrader-notebook.png"), full_page=True)
    page.goto(f"{url}/formgrader/submissions/{ids['bob']}/")
    page.wait_for_selector("text=dW")
    text = page.inner_text("body")
    page.screenshot(path=str(SCREENSHOTS / "formgrader-bob-01_layers.png"), full_page=True)
    assert "passed (1 point)" in text and "YOUR ANSWER HERE" in text
    page.goto(f"{url}/formgrader/submissions/{ids['ada']}/")
    page.wait_for_selector("text=My answer to")
    assert page.query_selector_all("input.score")  # the TA's score boxes
