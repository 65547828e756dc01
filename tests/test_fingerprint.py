"""lablib.fingerprint: the cache key of notebook code changes with the code, not with its comments."""

from __future__ import annotations

import numpy as np

from lablib.fingerprint import code_fingerprint


def cell(source: str, name: str = "f", **globals_):
    """A function defined the way a notebook cell defines it (in `__main__`)."""
    scope = {"__name__": "__main__", **globals_}
    exec(compile(source, "<cell>", "exec"), scope)  # noqa: S102 - the test's own code
    return scope[name]


BASE = '''
SCALE = 2.0

def helper(x):
    return x * SCALE

def f(x):
    return helper(x) + 1
'''


def test_same_code_same_fingerprint_and_comments_do_not_count():
    assert code_fingerprint(cell(BASE)) == code_fingerprint(cell(BASE))
    assert code_fingerprint(cell(BASE.replace("return x * SCALE", "return x * SCALE  # scaled"))) == code_fingerprint(cell(BASE))


def test_code_reached_through_globals_counts():
    base = code_fingerprint(cell(BASE))
    assert code_fingerprint(cell(BASE.replace("SCALE = 2.0", "SCALE = 3.0"))) != base  # a constant it reads
    assert code_fingerprint(cell(BASE.replace("return x * SCALE", "return x / SCALE"))) != base  # a function it calls
    assert code_fingerprint(cell(BASE.replace("helper(x) + 1", "helper(x) + 2"))) != base  # its own code


def test_attribute_names_are_not_globals():
    """`data.x_train` reads an attribute; a global that happens to be called x_train is not part of the key."""
    source = "def f(data):\n    return data.x_train\n"
    assert code_fingerprint(cell(source, x_train=np.zeros(3))) == code_fingerprint(cell(source, x_train=np.ones(3)))


def test_library_code_by_name_and_closures_by_content():
    assert code_fingerprint(np.mean) == code_fingerprint(np.mean) != code_fingerprint(np.sum)
    make = "def make(k):\n    def f(x):\n        return x * k\n    return f\n"
    maker = cell(make, "make")
    assert code_fingerprint(maker(2)) == code_fingerprint(maker(2)) != code_fingerprint(maker(3))
