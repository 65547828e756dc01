"""use_notebook: a later notebook runs the setup and answer cells of an earlier one."""

import shutil

import nbformat
import pytest

from conftest import notebook_path
from lablib.reuse import NotebookReuseError, NotebookReuseWarning, use_notebook


def test_runs_setup_and_answers_only(tmp_path):
    shutil.copy(notebook_path("01_layers"), tmp_path)
    layers = use_notebook("01_layers.ipynb", tmp_path)
    assert {"Linear", "ReLU", "Sigmoid", "Tanh", "GELU", "np"} <= set(vars(layers))
    assert "Double" not in vars(layers), "demo cells must not run"
    assert layers.__errors__ == {}
    assert layers.Linear(3, 2).W.data.shape == (3, 2)


def test_uses_the_students_current_answers(tmp_path):
    nb = nbformat.read(str(notebook_path("01_layers")), 4)
    relu = next(c for c in nb.cells if c.id == "relu")
    relu.source = "class ReLU(Module):\n    name = 'my own'\n"
    nbformat.write(nb, str(tmp_path / "01_layers.ipynb"))
    assert use_notebook("01_layers.ipynb", tmp_path).ReLU.name == "my own"


def test_a_broken_cell_warns_and_the_rest_still_loads(tmp_path):
    nb = nbformat.read(str(notebook_path("01_layers")), 4)
    next(c for c in nb.cells if c.id == "tanh").source = "class Tanh(Module:\n"
    nbformat.write(nb, str(tmp_path / "01_layers.ipynb"))
    with pytest.warns(NotebookReuseWarning, match="cell 'tanh' raised SyntaxError"):
        layers = use_notebook("01_layers.ipynb", tmp_path)
    assert hasattr(layers, "Linear") and hasattr(layers, "GELU") and not hasattr(layers, "Tanh")


def test_missing_or_malformed_notebooks_say_where_they_looked(tmp_path):
    with pytest.raises(NotebookReuseError, match="cannot find 01_layers.ipynb: looked at"):
        use_notebook("01_layers.ipynb", tmp_path)
    (tmp_path / "01_layers.ipynb").write_text("{not json")
    with pytest.raises(NotebookReuseError, match="could not be read"):
        use_notebook("01_layers.ipynb", tmp_path)


def test_a_notebook_that_reuses_others_can_itself_be_reused(tmp_path):
    for stem in ("01_layers", "02_losses", "04_training"):
        shutil.copy(notebook_path(stem), tmp_path)
    training = use_notebook("04_training.ipynb", tmp_path)  # its reuse cell finds 01 and 02 beside it
    assert training.__errors__ == {}
    assert {"Sequential", "SGD", "train_step", "save_model", "LAYER_TYPES"} <= set(vars(training))
    assert "history" not in vars(training), "training cells must not run"
