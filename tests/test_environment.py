"""Install metadata: environment.yml and pyproject.toml list the same packages; the lab starts."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def requirement(spec: str) -> tuple[str, str]:
    name, version = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", spec.strip()).groups()
    return name.lower().replace("_", "-"), version.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_packages = {requirement(d) for d in conda if isinstance(d, str) and not d.startswith(("python", "pip"))}
    assert conda_packages == {requirement(d) for d in project["dependencies"]}
    assert {"-e ."} == set(next(d for d in conda if isinstance(d, dict))["pip"])


def test_torch_is_only_an_optional_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(requirement(d)[0] == "torch" for d in project["dependencies"])
    assert project["optional-dependencies"]["crosscheck"] == ["torch==2.13.0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_readme_lab_command_starts_jupyterlab(tmp_path):
    """scripts/lab.sh serves JupyterLab (as root too) with the notebooks folder as its root."""
    port = _free_port()
    env = {**os.environ, "LABLIB_SKIP_INSTALL": "1", "LABLIB_VENV": str(Path(sys.executable).parent.parent),
           "JUPYTER_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        ["bash", "scripts/lab.sh", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password="],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline, body = time.time() + 60, ""
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()
        assert "01_layers.ipynb" in body and "02_losses.ipynb" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
