"""Tutorials as Jupyter notebooks, with nbgrader's cell metadata for their exercises.

A tutorial is a jupytext "percent" script (``# %%``, ``# %% [markdown]``, and
``# %% tags=["check"]`` for a cell that checks an exercise). ``notebook`` writes it as
nbformat 4.5: the ``"tutorial"`` as it is, nbgrader's instructor ``"source"`` (schema 3: each
``# solution`` block fenced as a solution region, each check cell an autograded test worth 1
point, every other code cell locked) or the ``"student"`` version (the regions cleared).
``score`` grades a notebook as ``nbgrader autograde`` does: all code cells run in order in one
fresh Python, errors do not stop the run, and a test cell earns its points if it raises nothing.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nnprune.assignments import solution_spans
from nnprune.files import atomic_write_text

CELL_LINE = re.compile(r"^# %%(?P<rest>.*)$")
KINDS = ("tutorial", "source", "student")
CHECK_TAG = "check"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CLEARED = ("# YOUR CODE HERE", "raise NotImplementedError()")


@dataclass(frozen=True)
class Cell:
    """One cell of a percent script: "code" or "markdown", its text, its tags."""

    kind: str
    source: str
    tags: tuple[str, ...] = ()

    @property
    def is_check(self) -> bool:
        return self.kind == "code" and CHECK_TAG in self.tags

    @property
    def has_solution(self) -> bool:
        return self.kind == "code" and bool(solution_spans(self.source.splitlines(True)))


def _header_end(lines: list[str]) -> int:
    """The index after jupytext's ``# ---`` … ``# ---`` header (0 without one)."""
    if lines and lines[0].strip() == "# ---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "# ---":
                return i + 1
    return 0


def _tags(rest: str, where: str) -> tuple[str, tuple[str, ...]]:
    rest = rest.strip()
    if rest == "[markdown]":
        return "markdown", ()
    if not rest:
        return "code", ()
    match = re.fullmatch(r"tags=(\[.*\])", rest)
    if match is None:
        raise ValueError(f"{where}: a cell line must be '# %%', '# %% [markdown]' or "
                         f"'# %% tags=[...]', got '# %% {rest}'")
    return "code", tuple(json.loads(match[1]))


def _trim(lines: list[str]) -> str:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "".join(lines).rstrip("\n")


def percent_cells(text: str, where: str = "<tutorial>") -> list[Cell]:
    """The cells of a percent-format script, in order (empty cells dropped)."""
    lines = text.splitlines(keepends=True)
    cells, kind, tags, body = [], "code", (), []

    def close():
        text = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body] \
            if kind == "markdown" else body
        source = _trim(text)
        if source.strip():
            cells.append(Cell(kind, source, tags))

    for line in lines[_header_end(lines):]:
        match = CELL_LINE.match(line.rstrip("\n"))
        if match:
            close()
            kind, tags = _tags(match["rest"], where)
            body = []
        else:
            body.append(line)
    close()
    return cells


def _fence(source: str, cleared: bool) -> str:
    """A solution cell's text with each block fenced for nbgrader (or cleared, as it does)."""
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for marker, stop, keep_from in reversed(solution_spans(lines)):
        pad = " " * (len(lines[marker]) - len(lines[marker].lstrip(" ")))
        lines[marker:keep_from] = [pad + line + "\n" for line in CLEARED] if cleared else \
            [pad + BEGIN + "\n", *lines[marker + 1:stop], pad + END + "\n"]
    return "".join(lines).rstrip("\n")


def _metadata(cell: Cell, grade_id: str) -> dict:
    """nbgrader's metadata: a check cell is an autograded test worth 1 point, a solution cell
    stays editable, any other cell is locked."""
    check, solution = cell.is_check, not cell.is_check and cell.has_solution
    meta = {"schema_version": 3, "task": False, "grade_id": grade_id, "grade": check,
            "locked": not solution, "solution": solution}
    return {**meta, "points": 1} if check else meta


def notebook(cells: list[Cell], kind: str = "tutorial", name: str = "notebook") -> dict:
    """nbformat 4.5 JSON (a dict) of ``cells`` in the form ``kind`` (see the module doc)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    out = []
    for i, cell in enumerate(cells):
        entry = {"cell_type": cell.kind, "id": f"{stem}-{i}"[-64:], "metadata": {},
                 "source": cell.source}
        if cell.tags:
            entry["metadata"]["tags"] = list(cell.tags)
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
            if kind != "tutorial":
                role = "check" if cell.is_check else "solution" if cell.has_solution else "cell"
                entry["metadata"]["nbgrader"] = _metadata(cell, f"{stem}-{role}-{i}")
                if cell.has_solution:
                    entry["source"] = _fence(cell.source, cleared=kind == "student")
        out.append(entry)
    return {"cells": out, "metadata": {"kernelspec": dict(KERNELSPEC),
                                       "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def write_notebook(nb: dict, path: str | os.PathLike) -> Path:
    return atomic_write_text(Path(path), json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def export_tutorials(out: str | os.PathLike, root: str | os.PathLike | None = None,
                     assignment: str = "tutorials") -> list[Path]:
    """Every tutorial as ``out/NN_topic.ipynb``; those with exercises also as nbgrader's
    ``out/source/<assignment>/NN_topic.ipynb`` and the student's ``out/student/NN_topic.ipynb``."""
    from nnprune.course.student import project_root

    root = project_root(root)
    out = Path(out)
    written = []
    for path in sorted((root / "tutorials").glob("[0-9][0-9]_*.py")):
        cells = percent_cells(path.read_text(encoding="utf-8"), str(path))
        forms = {"tutorial": out}
        if any(c.is_check for c in cells):
            forms.update(source=out / "source" / assignment, student=out / "student")
        for kind, folder in forms.items():
            written.append(write_notebook(notebook(cells, kind, path.stem),
                                          folder / f"{path.stem}.ipynb"))
    return written


RUNNER = """
import json, sys, traceback
cells = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
errors = []
for source in cells:
    try:
        exec(compile(source, "<cell>", "exec"), namespace)
        errors.append(None)
    except BaseException as err:  # a cell's error is its result, as in a notebook
        errors.append(traceback.format_exception_only(type(err), err)[-1].strip())
sys.stdout.flush()
sys.__stdout__.write("\\n@@NNPRUNE-CELLS@@" + json.dumps(errors) + "\\n")
"""


@dataclass(frozen=True)
class Score:
    """Points earned and possible; one (grade_id, points earned, error or None) per test."""

    earned: float
    possible: float
    tests: tuple[tuple[str, float, str | None], ...]


def score(nb: dict, cwd: str | os.PathLike, env: dict | None = None,
          timeout: float = 600) -> Score:
    """Run every code cell in order in one fresh Python (errors do not stop the run) and give
    each nbgrader test cell its points if it raised nothing."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    graded = [i for i, c in enumerate(code) if _is_test(c)]
    code = code[:graded[-1] + 1] if graded else []  # later cells cannot change a test's result
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in code]
    done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(sources),
                          cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    marker = "@@NNPRUNE-CELLS@@"
    if marker not in done.stdout:
        raise RuntimeError(f"the notebook's cells did not run to the end:\n{done.stderr[-2000:]}")
    errors = json.loads(done.stdout.rsplit(marker, 1)[1])
    tests = []
    for cell, error in zip(code, errors):
        if _is_test(cell):
            meta = cell["metadata"]["nbgrader"]
            tests.append((meta["grade_id"], 0.0 if error else float(meta["points"]), error))
    return Score(sum(t[1] for t in tests),
                 sum(float(c["metadata"]["nbgrader"]["points"]) for c in code if _is_test(c)),
                 tuple(tests))


def _is_test(cell: dict) -> bool:
    """An autograded test cell: nbgrader's grade true and solution false."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")
