""".gitignore names what the lab generates where it generates it, and nothing that no longer exists."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT

#: Where generated files go (paths relative to the repository), as the code names them.
GENERATED = ["build/checkpoints/full/mlp_fashion.npz", "build/checkpoints/ci/mlp_fashion.npz",
             "build/course/gradebook.db", "build/release/backprop-lab.zip", "data/fashion-mnist/train.gz"]


def patterns() -> list[str]:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a checkout")
def test_generated_files_are_ignored():
    proc = subprocess.run(["git", "check-ignore", "--no-index", *GENERATED], cwd=ROOT, capture_output=True, text=True)
    assert sorted(proc.stdout.split()) == sorted(GENERATED)


def test_no_stale_checkpoint_folder_is_listed():
    """Checkpoints live in build/checkpoints/<profile>/ (lablib/checkpoints.py), which build/ covers;
    notebooks/checkpoints/ was their old place."""
    stale = [p for p in patterns() if "checkpoints" in p and p != ".ipynb_checkpoints/"]
    assert stale == []
