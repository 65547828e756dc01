"""Where the lab keeps the models it trains: notebook 04 saves its chosen model, notebook 06 loads it.

    path = checkpoint_path("mlp_fashion")   # build/checkpoints/<profile>/mlp_fashion.npz
    save_model(model, path)                 # the student's own save_model (notebook 04)

The folder is `checkpoints/` under the lab's git-ignored `build/` folder: `<lab>/build/`, where
`<lab>` is the folder that holds `lablib/` (the repository, or the student's unzipped release, which
ships lablib next to the notebooks), unless `$LABLIB_BUILD` names another build folder. It does
not depend on the current directory, so a notebook finds it whether it runs in `notebooks/`
(JupyterLab, nbval) or in the release folder.

Each budget profile (`lablib.training.budget`) has its own subfolder: the seconds-long `ci` and
`grade` runs (the tests, the student's self-check) never overwrite the model of a real `full` run.
"""

from __future__ import annotations

from pathlib import Path

from .grading.paths import build_root
from .training import budget

__all__ = ["checkpoint_dir", "checkpoint_path"]


def checkpoint_dir(profile: str | None = None) -> Path:
    """`<build>/checkpoints/<profile>/`, created if missing; the profile defaults to the current one."""
    folder = build_root() / "checkpoints" / budget(profile).name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def checkpoint_path(name: str, profile: str | None = None) -> Path:
    """`<build>/checkpoints/<profile>/<name>.npz`: where a model called `name` is saved and found."""
    if not name or Path(name).name != name or name.endswith(".npz"):
        raise ValueError(f"name the checkpoint by a plain word such as 'mlp_fashion' (no folder, no .npz), "
                         f"not {name!r}")
    return checkpoint_dir(profile) / f"{name}.npz"
