"""What the tests that start a Jupyter server share (test_browser.py, test_formgrader_browser.py,
test_environment.py): a free port, the server as a context manager, and the headless Chromium the
browser tests drive through Playwright.

A helper module, not a test module (pytest collects only test_*.py): tests import it by name, as
they import conftest.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT

#: Debian's Chromium (`playwright install` is never used: it downloads a browser).
CHROMIUM = Path("/usr/bin/chromium")
#: Chromium's flags: no sandbox (CI runs as root in a container), no GPU, no network but the lab's.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
#: Where the browser tests leave their screenshots.
SCREENSHOTS = ROOT / "build" / "screenshots"
#: Seconds one status request to a starting server may take; seconds a stopped server gets to exit
#: (with its kernels) before it is killed.
REQUEST_S, STOP_S = 5, 20
#: How much of the server's log a failure quotes, in characters.
LOG_TAIL = 3000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(command: list[str], *, cwd: Path, env: dict[str, str], log: Path,
                   start_s: float) -> Iterator[tuple[str, str]]:
    """Start `command` (a `jupyter lab` launcher; --no-browser, a free port on 127.0.0.1, a fresh
    token and no password are added) in `cwd` with `env`, in a session of its own, its output in
    `log`; wait up to `start_s` seconds for its REST API to answer (the test fails with the log's
    tail if it exits or stays silent); yield (its base URL, its token). At the end, stop it and
    everything it started (its kernels): SIGTERM to its process group, SIGKILL after STOP_S."""
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            command + ["--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
                       f"--IdentityProvider.token={token}", "--ServerApp.password="],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + start_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the Jupyter server exited with status {proc.returncode}:\n"
                                + log.read_text()[-LOG_TAIL:])
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=REQUEST_S).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"the Jupyter server did not answer in {start_s} s:\n" + log.read_text()[-LOG_TAIL:])
                    time.sleep(0.5)
            yield base, token
        finally:
            with contextlib.suppress(ProcessLookupError):  # the group is gone once the server exited alone
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def playwright_or_skip() -> Any:
    """Playwright's sync API; skips the calling test module when Playwright (the `browser` extra) or
    Chromium (at CHROMIUM) is missing. Call it at module level."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: LABLIB_EXTRAS=browser bash scripts/test.sh")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)",
                    allow_module_level=True)
    return sync_api


def launch_chromium(playwright: Any) -> Any:
    """Headless Chromium (CHROMIUM, with CHROMIUM_ARGS) started by a running `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
