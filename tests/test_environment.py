"""Install metadata: environment.yml and pyproject.toml list the same packages; the lab starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from lab_server import jupyter_server

#: Seconds the README's lab gets to answer.
LAB_START_S = 60


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


@pytest.mark.slow
def test_the_readme_lab_command_starts_jupyterlab(tmp_path):
    """scripts/lab.sh serves JupyterLab (as root too) with the notebooks folder as its root."""
    env = {**os.environ, "LABLIB_SKIP_INSTALL": "1", "LABLIB_VENV": str(Path(sys.executable).parent.parent),
           "JUPYTER_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    with jupyter_server(["bash", "scripts/lab.sh"], cwd=ROOT, env=env, log=tmp_path / "lab.log",
                        start_s=LAB_START_S) as (base, token):
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as r:
            body = r.read().decode()
        assert "01_layers.ipynb" in body and "02_losses.ipynb" in body
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()


def test_setup_runs_pip_only_when_pyproject_or_extras_change(tmp_path):
    """scripts/venv.sh installs once, then starts without pip (and without a network) until
    pyproject.toml or LABLIB_EXTRAS change; a failed install is retried next time."""
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # records what pip would have been asked; fails when told to
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ -z "$FAIL" ]\n')
    fake.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (project / "scripts").mkdir()
    (project / "scripts" / "venv.sh").write_text((ROOT / "scripts" / "venv.sh").read_text())

    def setup(**env):
        script = "set -e; source scripts/venv.sh"
        done = subprocess.run(["bash", "-c", script], cwd=project, capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "LABLIB_VENV": str(venv), **env})
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return done.returncode, calls

    assert setup(FAIL="1")[0] != 0                   # pip failed: nothing recorded as installed
    assert setup() == (0, ["-m pip install --quiet --disable-pip-version-check -e ."])
    assert setup() == (0, [])                        # already installed: no pip
    assert setup(LABLIB_EXTRAS="crosscheck")[1] == ["-m pip install --quiet --disable-pip-version-check -e .[crosscheck]"]
    (project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert len(setup(LABLIB_EXTRAS="crosscheck")[1]) == 1
    assert setup(LABLIB_EXTRAS="crosscheck") == (0, [])
