"""`Parameter` and `Module`: the two base classes every student layer, loss and network builds on.

They mirror PyTorch's names so that what students learn here transfers:

- a `Parameter` holds an array `.data` and the gradient `.grad` that the last `backward` *set*;
- a `Module` is callable (`m(x)` runs `m.forward(x)`), finds its parameters automatically among
  its attributes (also inside child modules and lists/tuples/dicts of them), clears their
  gradients with `zero_grad()`, and prints as a readable nested tree.

Nothing here computes a forward or backward pass: that is the student's work.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

__all__ = ["Parameter", "Module"]


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        data: the values, any shape (a weight matrix `(in, out)`, a bias `(out,)`, ...).
        grad: `None` until a `backward` sets it; then an array of `data.shape`.
    """

    def __init__(self, data: Any):
        self.data = np.asarray(data)
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    """The Parameters and Modules inside one attribute value, with a display suffix."""
    if isinstance(value, (Parameter, Module)):
        yield "", value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            for suffix, found in _children(item):
                yield f"[{i}]{suffix}", found
    elif isinstance(value, dict):
        for key, item in value.items():
            for suffix, found in _children(item):
                yield f"[{key!r}]{suffix}", found


class Module:
    """Base class of layers, losses and networks.

    Subclasses define `forward` (and `backward`); this class provides the plumbing:

    - `module(*args)` calls `module.forward(*args)`;
    - `parameters()` lists every `Parameter` reachable from the attributes, each once, in the
      order the attributes were assigned;
    - `named_parameters()` gives the same with dotted names (`"layers[0].W"`);
    - `zero_grad()` clears every parameter's gradient;
    - `repr(module)` prints the tree of child modules, PyTorch style.

    `needs_input_grad` (True unless set otherwise) says whether `backward` must return dL/dx.
    A network sets it to False on its first layer, whose input is the data: nobody uses that
    gradient, so a layer may skip computing it and return None (PyTorch likewise computes no
    gradient for an input that does not require one). Gradient checks always check dx.
    """

    needs_input_grad: bool = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out: a student's traceback starts in their forward
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__}.forward is not written yet: implement it in its notebook cell"
        )

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__}.backward is not written yet: implement it in its notebook cell"
        )

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """Direct child modules with their attribute names (`"layers[0]"`)."""
        for attr, value in vars(self).items():
            for suffix, found in _children(value):
                if isinstance(found, Module):
                    yield attr + suffix, found

    def modules(self) -> list["Module"]:
        """This module and every module inside it (children, their children, ...), each once."""
        found: list[Module] = []
        seen: set[int] = set()

        def visit(module: Module) -> None:
            if id(module) in seen:
                return
            seen.add(id(module))
            found.append(module)
            for _, child in module.named_children():
                visit(child)

        visit(self)
        return found

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every parameter reachable from this module, each once, as `(dotted name, Parameter)`."""
        seen: set[int] = set()
        out: list[tuple[str, Parameter]] = []

        def visit(module: Module, prefix: str) -> None:
            for attr, value in vars(module).items():
                for suffix, found in _children(value):
                    name = prefix + attr + suffix
                    if isinstance(found, Parameter):
                        if id(found) not in seen:
                            seen.add(id(found))
                            out.append((name, found))
                    elif id(found) not in seen:
                        seen.add(id(found))
                        visit(found, name + ".")

        visit(self, "")
        return out

    def parameters(self) -> list[Parameter]:
        """Every parameter reachable from this module, each once, in assignment order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Clear the gradient of every parameter (sets `.grad` to `None`)."""
        for p in self.parameters():
            p.zero_grad()

    def astype(self, dtype: Any) -> "Module":
        """Convert every parameter to `dtype` (e.g. np.float32 for fast training); returns self."""
        for p in self.parameters():
            p.data = p.data.astype(dtype, copy=False)
            p.grad = None
        return self

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's own line; override to customise.

        By default: the shapes of the parameters held directly by this module.
        """
        parts = []
        for attr, value in vars(self).items():
            for suffix, found in _children(value):
                if isinstance(found, Parameter):
                    parts.append(f"{attr}{suffix}={tuple(found.data.shape)}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"
