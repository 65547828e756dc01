"""The student release is complete: its own requirements.txt, installed into a fresh virtual
environment (no system site packages, no lablib install), runs every release notebook, filled in
with the solutions, in the `ci` profile, with no error and no warning in any output.

What this catches: a package the notebooks import but requirements.txt lacks (ipywidgets for the
progress bars: without it tqdm warns "IProgress not found" in red), a file the release does not
ship (the data sample), a warning the student would see in red. Slow (a venv and a pip install,
fast from pip's cache). When the install fails, the package index pip uses is probed: the test
skips only when no answer comes from it (offline machine); otherwise the pip failure fails it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

from lab_server import free_port
from lablib import cells

ROOT = Path(__file__).resolve().parent.parent
#: Seconds for pip to install the requirements, and for one notebook to run.
PIP_TIMEOUT_S, NOTEBOOK_TIMEOUT_S = 900, 600
#: pip's patience with the network: without it, an offline machine retries every package for minutes
#: before trying the local indexes and wheel folders a machine may be configured with.
PIP_NETWORK = ("--retries", "1", "--timeout", "30")
#: The index pip uses when neither PIP_INDEX_URL nor pip's configuration names another.
DEFAULT_INDEX = "https://pypi.org/simple/"
#: Seconds the probe of the package index waits for an answer.
PROBE_S = 30
#: HTTP statuses of a proxy or load balancer that could not reach the index behind it.
GATEWAY_ERRORS = {502, 503, 504}


def package_index(python: Path) -> str:
    """The index URL `python -m pip install` uses: PIP_INDEX_URL, else pip's configuration (its
    `install` section before `global`), else DEFAULT_INDEX. Extra indexes and wheel folders are
    local or optional; the index is what a missing network takes away."""
    listing = subprocess.run([str(python), "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=120).stdout
    found = dict(re.findall(r"^(\S+?)\.index-url='(.*)'$", listing, re.M))
    return next((found[section] for section in (":env:", "install", "global") if section in found), DEFAULT_INDEX)


def unreachable(url: str) -> str | None:
    """Why nothing answers at `url` (no route, no name, refused, timed out, a gateway error), or None
    when a server answers, whatever it says (a 404 or a TLS failure is a reachable index's fault)."""
    if urllib.parse.urlparse(url).scheme == "file":
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        return None if os.path.exists(path) else f"{url}: no such folder"
    try:
        urllib.request.urlopen(url, timeout=PROBE_S).close()
    except urllib.error.HTTPError as err:
        return f"{url}: HTTP {err.code} (a gateway that cannot reach it)" if err.code in GATEWAY_ERRORS else None
    except urllib.error.URLError as err:
        return None if isinstance(err.reason, ssl.SSLError) else f"{url}: {err.reason}"
    except ssl.SSLError:
        return None
    except OSError as err:  # a timeout while reading, a connection reset
        return f"{url}: {err}"
    return None


@pytest.fixture(scope="module")
def released(student_release: Path) -> Path:
    return student_release


@pytest.fixture(scope="module")
def student_python(released: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh venv holding exactly what the release's requirements.txt names."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *PIP_NETWORK,
         "-r", str(released / "requirements.txt")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=PIP_TIMEOUT_S)
    if proc.returncode != 0:
        index = package_index(python)
        why = unreachable(index)
        if why:
            pytest.skip(f"the package index pip uses is unreachable ({why}), so the release's requirements "
                        "cannot be installed")
        pytest.fail(f"pip install -r requirements.txt failed, and the package index {index} answers:\n"
                    f"{proc.stdout[-3000:]}")
    return python


def filled_with_solutions(released_nb: Path, source_nb: Path) -> nbformat.NotebookNode:
    """The released notebook with every answer cell (code and written) replaced by the source's."""
    solutions = {cells.grade_id(c): c.source for c in cells.load(source_nb).cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    nb = cells.load(released_nb)
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = solutions[cells.grade_id(cell)]
    return nb


def problems_in(nb: nbformat.NotebookNode) -> list[str]:
    """Every error output, stderr stream and printed warning, as "cell <id>: <first line>"."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {cell.get('id')}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                found.append(f"cell {cell.get('id')}: stderr: {out.text.strip()[:300]}")
            elif "Warning" in json.dumps(out.get("data", {})) + out.get("text", ""):
                found.append(f"cell {cell.get('id')}: a warning in the output: {str(out)[:300]}")
    return found


@pytest.mark.slow
def test_every_release_notebook_runs_clean_in_the_release_environment(released: Path, student_python: Path,
                                                                       tmp_path: Path) -> None:
    work = tmp_path / "backprop-lab"
    shutil.copytree(released, work)
    notebooks = sorted(work.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, f"no notebooks in {released}"
    for nb in notebooks:
        nbformat.write(filled_with_solutions(nb, ROOT / "notebooks" / nb.name), nb)
    probe = work / "probe.ipynb"  # which Python the kernel runs: the venv's, not the test's
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, lablib\nprint(sys.prefix, lablib.__file__)")]), probe)

    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(LABLIB_PROFILE="ci", PATH=f"{student_python.parent}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.run(
        [str(student_python), "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
         "--allow-errors", f"--ExecutePreprocessor.timeout={NOTEBOOK_TIMEOUT_S}", str(probe),
         *map(str, notebooks)],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=NOTEBOOK_TIMEOUT_S * (len(notebooks) + 1))
    assert proc.returncode == 0, proc.stdout[-3000:]

    prefix, lablib_file = nbformat.read(probe, as_version=4).cells[0].outputs[0].text.split()
    assert Path(prefix) == student_python.parent.parent, "the kernel ran another Python than the release's venv"
    assert Path(lablib_file).is_relative_to(work), "the kernel imported another lablib than the release's"
    report = {nb.name: problems_in(nbformat.read(nb, as_version=4)) for nb in notebooks}
    assert not any(report.values()), "\n".join(f"{name}: {p}" for name, ps in report.items() for p in ps)
    for nb in notebooks:  # every code cell ran (none was skipped by an error above it)
        unrun = [c.get("id") for c in nbformat.read(nb, as_version=4).cells
                 if c.cell_type == "code" and c.source.strip() and c.execution_count is None]
        assert not unrun, f"{nb.name}: cells never ran: {unrun}"


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    """Answers GET /<status> with that HTTP status."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_the_index_counts_as_unreachable_only_when_nothing_answers(tmp_path: Path) -> None:
    """An index that answers (any status but a gateway's) is reachable: a pip failure then fails the
    test; only silence, a refusal or a gateway error makes it skip."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert unreachable(f"{base}/200") is None
        assert unreachable(f"{base}/404") is None
        assert unreachable(f"{base}/502") == f"{base}/502: HTTP 502 (a gateway that cannot reach it)"
    finally:
        server.shutdown()
        server.server_close()
    refused = f"http://127.0.0.1:{free_port()}/simple/"
    assert unreachable(refused) and "refused" in unreachable(refused).lower()
    assert unreachable(tmp_path.as_uri()) is None
    assert unreachable((tmp_path / "missing").as_uri()) == f"{(tmp_path / 'missing').as_uri()}: no such folder"


def test_the_index_is_the_one_pip_is_configured_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.example/simple/")
    assert package_index(Path(sys.executable)) == "https://index.example/simple/"
