"""Assignments from solutions: the solution file is the source of truth.

In a solution file a line holding only ``# solution`` starts a block that students will
write, up to the first line indented less than the marker, a new ``# %%`` cell, or an
``# end solution`` line, whichever comes first. ``make_exercise`` replaces each block with
``# Write your code here.`` and a ``raise NotImplementedError``, so an unfilled exercise stops
where the work is; everything else is kept byte for byte.

>>> src = 'def area(r):\\n    # solution\\n    return 3.14159 * r * r\\n'
>>> print(make_exercise(src), end="")
def area(r):
    # Write your code here.
    raise NotImplementedError("Exercise: write the code of this block")
"""
from __future__ import annotations

import os
from pathlib import Path

from nnprune.files import atomic_write_text

MARKER = "# solution"
END_MARKER = "# end solution"
PLACEHOLDER = "# Write your code here."
STUB = 'raise NotImplementedError("Exercise: write the code of this block")'


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def solution_spans(lines: list[str]) -> list[tuple[int, int, int]]:
    """(marker, stop, keep_from) line indices of each ``# solution`` block of ``lines``.

    The block's code is ``lines[marker + 1:stop]``; ``lines[stop:keep_from]`` is the
    ``# end solution`` line if there is one (else empty); the blank lines that separated the
    block from what follows are not part of it.
    """
    spans = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        marker, indent = i, _indent(lines[i])
        i += 1
        while i < len(lines) and lines[i].strip() != END_MARKER:
            stripped = lines[i].strip()
            if stripped.startswith("# %%") or (stripped and _indent(lines[i]) < indent):
                break
            i += 1
        if i < len(lines) and lines[i].strip() == END_MARKER:
            spans.append((marker, i, i + 1))
            i += 1
            continue
        stop = i
        while stop > marker + 1 and not lines[stop - 1].strip():
            stop -= 1
        spans.append((marker, stop, stop))
    return spans


def make_exercise(source: str, filename: str = "<solution>") -> str:
    """The exercise text for a solution text: every ``# solution`` block replaced."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    lines = source.splitlines(keepends=True)
    spans = solution_spans(lines)
    if not spans:
        raise ValueError(f"{filename}: no '{MARKER}' marker found; nothing to turn into an "
                         "exercise")
    for marker, _, keep_from in reversed(spans):
        pad = " " * _indent(lines[marker])
        lines[marker:keep_from] = [pad + PLACEHOLDER + "\n", pad + STUB + "\n"]
    exercise = "".join(lines)
    try:
        compile(exercise, filename, "exec")
    except SyntaxError as err:
        raise ValueError(f"{filename}: the exercise would not compile ({err.msg}, line "
                         f"{err.lineno}); a '# solution' block must hold whole "
                         "statements") from None
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
