"""lablib.checkpoints: one place, per budget profile, where notebook 04 saves and notebook 06 loads."""

import subprocess
import sys
from pathlib import Path

import pytest

import lablib
from lablib.checkpoints import checkpoint_dir, checkpoint_path
from lablib.grading.paths import BUILD_ENV
from lablib.training import PROFILE_VAR


def test_checkpoints_live_under_build_per_profile(tmp_path, monkeypatch):
    monkeypatch.setenv(BUILD_ENV, str(tmp_path / "b"))
    monkeypatch.setenv(PROFILE_VAR, "ci")
    assert checkpoint_path("mlp_fashion") == tmp_path / "b" / "checkpoints" / "ci" / "mlp_fashion.npz"
    assert checkpoint_dir().is_dir()
    assert checkpoint_path("mlp_fashion", "full").parent == tmp_path / "b" / "checkpoints" / "full"


def test_default_is_the_build_folder_beside_lablib_whatever_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(BUILD_ENV, raising=False)
    code = "from lablib.checkpoints import checkpoint_dir; print(checkpoint_dir('grade'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={"PATH": "", "PYTHONPATH": str(Path(lablib.__file__).parent.parent)})
    lab = Path(lablib.__file__).resolve().parent.parent
    assert Path(out.stdout.strip()) == lab / "build" / "checkpoints" / "grade"


@pytest.mark.parametrize("name", ["", "sub/model", "model.npz"])
def test_a_checkpoint_is_named_by_a_plain_word(name, tmp_path, monkeypatch):
    monkeypatch.setenv(BUILD_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="plain word"):
        checkpoint_path(name)


def test_unknown_profile_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(BUILD_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="unknown profile"):
        checkpoint_dir("fast")
