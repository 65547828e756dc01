"""scripts/lab.sh: the student's lab loads no formgrader (and logs no error about the course), the
instructor's lab does (tests/test_formgrader_browser.py proves formgrader works there in a browser)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from lablib.grading import paths

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed")
pytestmark = pytest.mark.slow

#: Seconds the server gets to start.
SERVER_START_S = 90
FORMGRADER = "nbgrader.server_extensions.formgrader | extension was successfully loaded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_log(tmp_path: Path, *args: str) -> str:
    """Start `bash scripts/lab.sh *args`, wait until it answers, stop it; returns its log."""
    port, token = free_port(), secrets.token_hex(16)
    command = ["bash", str(ROOT / "scripts" / "lab.sh"), *args, "--no-browser", f"--ServerApp.port={port}",
               f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1"]
    env = {**os.environ, paths.BUILD_ENV: str(tmp_path / "build"), "LABLIB_SKIP_INSTALL": "1",
           "LABLIB_VENV": str(Path(sys.executable).parent.parent)}
    log_path = tmp_path / f"server{'-'.join(args)}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail("jupyter lab did not start:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.5)
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
    return log_path.read_text()


def test_the_students_lab_loads_no_formgrader_and_logs_no_error(tmp_path):
    log = server_log(tmp_path)
    assert "jupyterlab | extension was successfully loaded" in log, log[-3000:]
    assert FORMGRADER not in log
    errors = [line for line in log.splitlines() if line.startswith("[E")]
    assert errors == [], errors


def test_the_instructors_lab_loads_formgrader(tmp_path):
    log = server_log(tmp_path, "--instructor")
    assert FORMGRADER in log, log[-3000:]
    assert "not a subdirectory" not in log
