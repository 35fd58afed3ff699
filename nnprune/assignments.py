"""Assignments from solutions: the solution file is the source of truth.

In a solution file (a tutorial or any Python file) a line holding only ``# solution`` starts a
block that students will write. The block runs from that line to the first line indented less
than the marker, to a new ``# %%`` cell, or to an explicit ``# end solution`` line, whichever
comes first. ``make_exercise`` replaces each block with one ``# Write your code here.`` line at
the marker's indentation, keeping everything else byte for byte, and checks that the exercise
still compiles (a function body needs its docstring to stay valid Python).

>>> src = 'def area(r):\\n    \"\"\"Area of a disk.\"\"\"\\n    # solution\\n    return 3.14159 * r * r\\n'
>>> print(make_exercise(src), end="")
def area(r):
    \"\"\"Area of a disk.\"\"\"
    # Write your code here.
"""
from __future__ import annotations

import os
from pathlib import Path

from nnprune.files import atomic_write_text

MARKER = "# solution"
END_MARKER = "# end solution"
PLACEHOLDER = "# Write your code here."


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def make_exercise(source: str, filename: str = "<solution>") -> str:
    """The exercise text for a solution text: every ``# solution`` block replaced."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i, blocks = 0, 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != MARKER:
            out.append(line)
            i += 1
            continue
        blocks += 1
        indent = _indent(line)
        out.append(" " * indent + PLACEHOLDER + "\n")
        start = i = i + 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped == END_MARKER:
                i += 1
                start = i  # the end marker goes too; nothing to give back
                break
            if stripped.startswith("# %%") or (stripped and _indent(lines[i]) < indent):
                break
            i += 1
        # give back the blank lines that separated the block from what follows
        back = i
        while back > start and not lines[back - 1].strip():
            back -= 1
        out.extend(lines[back:i])
    if blocks == 0:
        raise ValueError(f"{filename}: no '{MARKER}' marker found; nothing to turn into an exercise")
    exercise = "".join(out)
    try:
        compile(exercise, filename, "exec")
    except SyntaxError as err:
        raise ValueError(f"{filename}: the exercise would not compile ({err.msg}, line {err.lineno}); "
                         "keep a docstring or a statement before each '# solution' "
                         "inside a function") from None
    return exercise


def write_exercise(solution: str | os.PathLike, exercise: str | os.PathLike) -> Path:
    """Read the solution file, write its exercise file atomically, return the exercise path."""
    for name, value in (("solution", solution), ("exercise", exercise)):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a path (str or os.PathLike), got "
                            f"{type(value).__name__}")
    solution, exercise = Path(solution), Path(exercise)
    if solution.resolve() == exercise.resolve():
        raise ValueError(f"exercise path must differ from the solution path, got {exercise}")
    text = make_exercise(solution.read_text(encoding="utf-8"), str(solution))
    return atomic_write_text(exercise, text)
