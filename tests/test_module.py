"""Parameter and Module: the plumbing every student class relies on."""

import numpy as np
import pytest

from lablib import Module, Parameter


class Affine(Module):
    def __init__(self, n_in, n_out):
        self.W = Parameter(np.ones((n_in, n_out)))
        self.b = Parameter(np.zeros(n_out))

    def forward(self, x):
        return x @ self.W.data + self.b.data


class Stack(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Nothing(Module):
    pass


def test_call_runs_forward():
    assert np.array_equal(Affine(2, 3)(np.ones((1, 2))), [[2.0, 2.0, 2.0]])


def test_parameters_found_in_attributes_lists_and_dicts_in_order():
    a, b, c = Affine(2, 3), Affine(3, 4), Affine(4, 1)
    net = Stack(a, b)
    net.heads = {"out": c}
    names = [name for name, _ in net.named_parameters()]
    assert names == ["layers[0].W", "layers[0].b", "layers[1].W", "layers[1].b", "heads['out'].W", "heads['out'].b"]
    assert net.parameters()[0] is a.W and net.parameters()[-1] is c.b


def test_shared_parameters_listed_once():
    a = Affine(2, 2)
    net = Stack(a, a)
    assert len(net.parameters()) == 2


def test_zero_grad_clears_every_gradient():
    net = Stack(Affine(2, 3), Affine(3, 1))
    for p in net.parameters():
        p.grad = np.ones_like(p.data)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_modules_lists_the_tree_once_each_in_order():
    a, b = Affine(2, 3), Nothing()
    inner = Stack(b)
    net = Stack(a, inner, a)
    assert net.modules() == [net, a, inner, b]


def test_needs_input_grad_defaults_to_true_and_is_per_instance():
    first, second = Affine(2, 3), Affine(3, 1)
    first.needs_input_grad = False
    assert not first.needs_input_grad and second.needs_input_grad and Module.needs_input_grad


def test_repr_is_nested_and_readable():
    net = Stack(Affine(2, 3), Nothing())
    assert repr(net) == (
        "Stack(\n"
        "  (layers[0]): Affine(W=(2, 3), b=(3,))\n"
        "  (layers[1]): Nothing()\n"
        ")"
    )
    assert repr(Parameter(np.zeros((2, 3)))) == "Parameter(shape=(2, 3), dtype=float64)"


def test_unwritten_forward_and_backward_fail_loudly_with_the_class_name():
    with pytest.raises(NotImplementedError, match="Nothing.forward"):
        Nothing()(1)
    with pytest.raises(NotImplementedError, match="Nothing.backward"):
        Nothing().backward(1)


def test_a_crash_in_forward_shows_the_students_frame_not_lablibs():
    """A test cell that calls `layer(x)` showed lablib/module.py's __call__ in the traceback above the
    student's own line (student review): IPython hides frames marked __tracebackhide__."""
    import subprocess
    import sys

    script = '''
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
ip.run_cell("""
from lablib import Module
class Linear(Module):
    def forward(self, x):
        return x @ self.W
Linear()(1)
""")
'''
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    shown = done.stdout + done.stderr
    assert "AttributeError" in shown and "return x @ self.W" in shown, shown
    assert "module.py" not in shown, shown
