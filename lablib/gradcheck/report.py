"""The result of a check: one `Item` per checked property, printed as text and as HTML.

A test cell asserts on it (`report.assert_ok("dW")`), so a failing autograded cell shows the student
the diagnosis; a notebook cell that ends with the report displays it as a small table.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Item", "CheckReport"]


@dataclass
class Item:
    """One checked property, such as "forward", "dx" or "dW".

    passed: whether it holds. detail: what was measured ("max scaled error 3e-11 ≤ 1e-06 over all 15
    entries"). problems: plain-word findings, most important first (empty when passed).
    """

    name: str
    passed: bool = True
    detail: str = ""
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.passed = False
        if problem not in self.problems:
            self.problems.append(problem)


@dataclass
class CheckReport:
    """Everything one check found.

    title: what was checked, on what input. items: the properties in display order. notes: facts
    worth knowing that do not fail the check (kinks skipped, warnings numpy raised). evaluations:
    how many times the numeric gradients ran the student's forward (the cost of the check).
    """

    title: str
    items: dict[str, Item] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    evaluations: int = 0

    def item(self, name: str) -> Item:
        if name not in self.items:
            self.items[name] = Item(name)
        return self.items[name]

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.items.values())

    def __bool__(self) -> bool:
        return self.passed

    def failed(self) -> list[str]:
        return [name for name, item in self.items.items() if not item.passed]

    def assert_ok(self, *names: str) -> None:
        """Raise AssertionError (with the diagnosis) unless every named item passed.

        With no names, every item must pass. An unknown name is an error of the test, not of the
        student, and raises KeyError listing the known ones.
        """
        wanted = names or tuple(self.items)
        unknown = [n for n in wanted if n not in self.items]
        if unknown:
            raise KeyError(f"no check named {unknown}; this report has {list(self.items)}")
        if not all(self.items[n].passed for n in wanted):
            raise AssertionError("\n" + self.to_text(wanted))

    def to_text(self, names: tuple[str, ...] | None = None) -> str:
        shown = [self.items[n] for n in (names or self.items)]
        width = max([len(item.name) for item in shown] + [4])
        lines = [self.title]
        for item in shown:
            status = "ok    " if item.passed else "FAILED"
            lines.append(f"  {item.name:<{width}}  {status}  {item.detail}".rstrip())
            for problem in item.problems:
                lines.append(f"  {'':<{width}}  -> {problem}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        rows = []
        for item in self.items.values():
            colour = "#1a7f37" if item.passed else "#cf222e"
            status = "ok" if item.passed else "FAILED"
            problems = "".join(f"<li>{html.escape(p)}</li>" for p in item.problems)
            rows.append(
                f"<tr><td><code>{html.escape(item.name)}</code></td>"
                f"<td style='color:{colour};font-weight:bold'>{status}</td>"
                f"<td style='text-align:left'>{html.escape(item.detail)}"
                f"{'<ul>' + problems + '</ul>' if problems else ''}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><b>{html.escape(self.title)}</b>"
            "<table><tr><th>check</th><th>result</th><th style='text-align:left'>details</th></tr>"
            + "".join(rows) + "</table>"
            + (f"<ul style='color:#57606a'>{notes}</ul>" if notes else "")
            + "</div>"
        )
