"""The student's day in a real browser: headless Chromium, driven by Playwright, in the JupyterLab
the README starts (`scripts/lab.sh`), and in the JupyterLab a student starts in the release folder.

- notebook 01 and notebook 04 (`ci` profile) run with Run All: no error output, no warning on stderr,
  check reports rendered as HTML tables, each passing test cell saying so in one line, the training
  progress bar a widget (not text on a red background), the plots images;
- in the student release, a wrong backward typed into the answer cell of notebook 01 shows, under
  its test cell, the diagnosis (not a traceback through lablib).

Screenshots land in `build/screenshots/`. Needs the optional extra `browser` (Playwright for Python)
and Debian's Chromium at /usr/bin/chromium (`playwright install` is never used: it downloads a
browser); skips with the reason otherwise. `.ci/run` installs both.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ROOT
from lab_server import SCREENSHOTS, jupyter_server, launch_chromium, playwright_or_skip

#: Seconds for JupyterLab to answer, for a notebook's kernel to start, for Run All to finish.
LAB_START_S, KERNEL_START_S, RUN_ALL_S = 90, 60, 240
#: JupyterLab settings of the test's lab: no news fetched from the internet; every cell in the DOM
#: (the default windowing leaves cells out of view unrendered); no autosave of the copies it runs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

sync_api = playwright_or_skip()

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def jupyter_lab(command: list[str], cwd: Path, tmp: Path) -> Iterator[str]:
    """Start `command` (a `jupyter lab` launcher; port, token and --no-browser are added) in `cwd`;
    yields the lab's URL with its token; stops it (and its kernels) at the end."""
    settings = tmp / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's own default: inline
    env.update(LABLIB_PROFILE="ci", LABLIB_SKIP_INSTALL="1", LABLIB_VENV=sys.prefix,
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    with jupyter_server(command, cwd=cwd, env=env, log=tmp / "lab.log", start_s=LAB_START_S) as (base, token):
        yield f"{base}/lab/tree/{{name}}?token={token}"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


KERNEL_READY = """() => /Python/.test(document.querySelector('.jp-Toolbar-kernelName')?.textContent || '')
    && document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'"""


def open_notebook(page, url: str, name: str) -> None:
    """Open a notebook and start its kernel, accepting JupyterLab's "Select Kernel" dialog as a
    student would (Python 3 is preselected)."""
    # &reset: a fresh workspace, so the notebook an earlier test left open is not restored beside this one
    # (Run All would then run whichever notebook JupyterLab made active)
    page.goto(url.format(name=name) + "&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=LAB_START_S * 1000)
    page.wait_for_function(f"() => document.querySelector('.jp-Dialog') || ({KERNEL_READY})()",
                           timeout=KERNEL_START_S * 1000, polling=250)
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog .jp-mod-accept").click()
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_START_S * 1000, polling=250)


def run_all(page, complete: bool = True) -> None:
    """Run → Run All Cells, wait until nothing runs or waits to run; with `complete`, fail with the
    outputs of the cell where Run All stopped if a cell was left unexecuted (JupyterLab stops at an
    exception)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('li[data-command="runmenu:run-all"]').click()
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator:not([data-status="idle"])', timeout=10_000)
    page.wait_for_function(
        """() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'
                 && ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(p => p.textContent.includes('*'))""",
        timeout=RUN_ALL_S * 1000, polling=500)
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    unrun = [i for i, prompt in enumerate(prompts) if not any(ch.isdigit() for ch in prompt)]
    if unrun and complete:
        stopped = page.locator(".jp-Notebook .jp-CodeCell").nth(max(unrun[0] - 1, 0))
        pytest.fail(f"Run All stopped before code cell {unrun[0]}; the cell before it shows:\n"
                    + stopped.inner_text()[-3000:])


#: JupyterLab renders error outputs and stderr streams alike, with this MIME type (a red background).
STDERR = "[data-mime-type='application/vnd.jupyter.stderr']"


def outputs(page, selector: str) -> list[str]:
    return page.locator(f".jp-OutputArea-output{selector}").all_inner_texts()


def screenshot(page, locator, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(SCREENSHOTS / name))


def cell(page, text: str):
    """The notebook cell whose input contains `text`."""
    return page.locator(".jp-Notebook .jp-Cell", has=page.locator(".jp-InputArea", has_text=text)).first


@pytest.fixture(scope="module")
def lab_of_the_readme(tmp_path_factory) -> Iterator[str]:
    """`bash scripts/lab.sh`, as the README starts it, serving a copy of notebooks/ (what Run All
    writes stays out of the repository)."""
    tmp = tmp_path_factory.mktemp("lab")
    copy = tmp / "repo"
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    (copy / "notebooks").mkdir()
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy2(nb, copy / "notebooks" / nb.name)
    with jupyter_lab(["bash", "scripts/lab.sh"], copy, tmp) as url:
        yield url


def test_notebook_01_runs_all_with_reports_as_html_and_no_error(page, lab_of_the_readme):
    open_notebook(page, lab_of_the_readme, "01_layers.ipynb")
    run_all(page)
    screenshot(page, cell(page, "check_layer(Double()"), "01_report_demo.png")
    screenshot(page, cell(page, '"""Linear.backward: dx matches'), "01_test_linear_dx.png")
    assert outputs(page, STDERR) == []  # no error, no warning
    report = cell(page, "check_layer(Double()").locator(".jp-RenderedHTMLCommon table")
    assert report.count() == 1 and "FAILED" in report.inner_text()  # the demo's wrong backward, as a table
    passed = outputs(page, ".jp-RenderedHTMLCommon")
    assert any(text.startswith("✓ passed: dx") for text in passed), passed
    dx_cell = cell(page, '"""Linear.backward: dx matches').locator(".jp-OutputArea-output")
    assert dx_cell.count() == 1 and "dW" not in dx_cell.inner_text()  # one line, only the row it grades


def test_notebook_04_trains_with_a_widget_progress_bar_and_image_plots(page, lab_of_the_readme):
    open_notebook(page, lab_of_the_readme, "04_training.ipynb")
    run_all(page)
    train = cell(page, "history = fit(")
    screenshot(page, train, "04_training.png")
    screenshot(page, cell(page, "plot_confusion_matrix(counts"), "04_confusion.png")
    assert outputs(page, STDERR) == []  # no error, no warning (no TqdmWarning: ipywidgets is installed)
    bar = train.locator(".widget-hprogress, .widget-progress")
    assert bar.count() >= 1, train.inner_text()  # ipywidgets renders tqdm's bar, not a red text line
    assert "100%" in train.inner_text() or "100 %" in train.inner_text()
    assert train.locator(".jp-RenderedImage img").count() >= 1  # the live curves
    assert cell(page, "plot_history(history").locator(".jp-RenderedImage img").count() == 1
    assert cell(page, "plot_confusion_matrix(counts").locator(".jp-RenderedImage img").count() == 1
    assert "test accuracy" in cell(page, "test_set.evaluate(").locator(".jp-OutputArea").inner_text()


#: What a student might type into notebook 01's Linear cell: a backward that averages dW over the batch.
WRONG_LINEAR = '''class Linear(Module):
    """y = x @ W + b."""

    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        self.W = Parameter(rng.standard_normal((in_features, out_features)) * 0.1)
        self.b = Parameter(np.zeros(out_features))

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        self.W.grad = self.x.T @ dout / len(dout)
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T
'''


def test_in_the_release_a_wrong_backward_shows_its_diagnosis(page, student_release, tmp_path):
    folder = tmp_path / "backprop-lab"  # a copy: what the lab writes stays out of the shared release
    shutil.copytree(student_release, folder)
    as_root = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root (lab.sh adds it too)
    with jupyter_lab([sys.executable, "-m", "jupyter", "lab", *as_root], folder, tmp_path) as url:
        open_notebook(page, url, "01_layers.ipynb")
        answer = cell(page, "class Linear(Module)")
        answer.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(WRONG_LINEAR)
        assert "/ len(dout)" in answer.locator(".cm-content").inner_text()
        run_all(page, complete=False)  # Run All stops at the first failed test cell, as for a student
        test_dw = cell(page, 'assert_ok("dW")')
        screenshot(page, test_dw, "release_01_wrong_dW.png")
        error = test_dw.locator(f".jp-OutputArea-output{STDERR}")
        assert error.count() == 1
        text = error.inner_text()
        assert text.startswith("Check failed: dW") and "FAILED" in text, text
        assert "Traceback" not in text and "report.py" not in text and "lablib" not in text, text
        assert cell(page, '"""Linear.backward: dx matches').locator(".jp-OutputArea-output").inner_text().startswith("✓ passed")
