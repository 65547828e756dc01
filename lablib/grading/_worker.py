"""Child process of `lablib check`: run one notebook's code cells, reporting each cell as it goes.

    python -m lablib.grading._worker NOTEBOOK EVENTS [MEMORY_MB]

Runs every code cell of NOTEBOOK in order, in one namespace, with hidden-test blocks removed (the
student's view), through `lablib.cells.run_cells`. Before and after each cell it appends one JSON
line to the file EVENTS:

    {"event": "start", "index": 7, "grade_id": "linear"}
    {"event": "done", "index": 7, "grade_id": "linear", "error": null, "seconds": 0.001}
    ...
    {"event": "end"}

so that when the parent stops this process (a timeout) or it dies (`os._exit`, a crash), the cells
that finished keep their results and the cell that was running is known. What the notebook prints
is captured by run_cells, never written into EVENTS. MEMORY_MB caps the process's memory.
Needs no nbformat (the student's release may run it from a Python without it).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from typing import Any, TextIO

from lablib import cells
from lablib.grading import notebook
from lablib.grading._proc import limit_memory


def _emit(events: TextIO, **record: Any) -> None:
    events.write(json.dumps(record) + "\n")
    events.flush()


def run(path: str, events_path: str, memory_mb: int = 0) -> int:
    nb = notebook.read(path, validate=False)  # the parent has read it already
    scope: dict[str, Any] = {}  # run_cells fills it in place, so definitions carry from cell to cell
    with open(events_path, "a", encoding="utf-8") as events:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            gid = notebook.grade_id(cell)
            _emit(events, event="start", index=index, grade_id=gid)
            start = time.perf_counter()
            if gid is None:  # a cell the student added: give it an id so that its error is reported
                cell = copy.deepcopy(cell)
                cell.setdefault("metadata", notebook.Node()).setdefault("nbgrader", notebook.Node())["grade_id"] = \
                    f"cell-{index}"
            one = notebook.Node(cells=[cell], metadata=nb.get("metadata", {}))
            try:
                (result,) = cells.run_cells(one, hidden=False, namespace=scope).values()
                error = result.error
            except MemoryError:  # raised again while run_cells kept the cell's printed output
                limit = f"the memory limit of {memory_mb} MiB" if memory_mb else "the memory available"
                error = f"MemoryError: the cell went over {limit} (a loop that prints or allocates without end?)"
            _emit(events, event="done", index=index, grade_id=gid, error=error,
                  seconds=round(time.perf_counter() - start, 4))
        _emit(events, event="end")
    return 0


if __name__ == "__main__":
    memory = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if memory > 0:
        limit_memory(memory)
    sys.exit(run(sys.argv[1], sys.argv[2], memory))
