"""Tasks in the library: the bodies a student writes, marked in the package's own source.

A task is one or more blocks inside function bodies, each between a comment line
``# task N.M: title`` (ending in ``(needs 2.1)`` if it calls another task's code) and
``# end task`` at the same indentation. In the student copy a block's body becomes
``raise NotImplementedError("Task N.M: title")``. Its tests carry the marker ``taskN_M``.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

TASK_LINE = re.compile(r"^(?P<indent>[ ]*)# task (?P<id>\d+\.\d+): (?P<title>\S.*?)\s*$")
END_LINE = "# end task"
NEEDS = re.compile(r"\s*\(needs (?P<ids>\d+\.\d+(?:, *\d+\.\d+)*)\)$")
TASK_ID = re.compile(r"^\d+\.\d+$")


@dataclass(frozen=True)
class Block:
    """One marked block: lines ``start`` (the task line) to ``stop`` (the end line) of ``path``."""

    path: str
    task: str
    title: str
    needs: tuple[str, ...]
    start: int
    stop: int
    indent: int


@dataclass(frozen=True)
class Task:
    """A task: its id ("2.2"), title, the tasks it needs and its blocks, in source order."""

    id: str
    title: str
    needs: tuple[str, ...]
    blocks: tuple[Block, ...]

    @property
    def marker(self) -> str:
        """The pytest marker of its tests: "2.2" -> "task2_2"."""
        return "task" + self.id.replace(".", "_")

    @property
    def message(self) -> str:
        return f"Task {self.id}: {self.title}"


def task_key(task_id: str) -> tuple[int, int]:
    """Sort key of a task id: "2.10" after "2.9"."""
    major, minor = task_id.split(".")
    return int(major), int(minor)


def comment_lines(source: str) -> set[int]:
    """0-based numbers of the lines that hold only a comment (not text inside a string)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as err:
        raise ValueError(f"cannot read the source: {err}") from None
    return {tok.start[0] - 1 for tok in tokens
            if tok.type == tokenize.COMMENT and not tok.line[:tok.start[1]].strip()}


def find_blocks(source: str, path: str = "<source>") -> list[Block]:
    """The marked blocks of one source text; a marker without its pair is an error.

    Only comment lines count: a marker quoted in a docstring is text, not a task.
    """
    blocks: list[Block] = []
    open_: tuple[re.Match, int] | None = None
    comments = comment_lines(source) if "# task" in source or END_LINE in source else set()
    for number, line in enumerate(source.splitlines()):
        if number not in comments:
            continue
        match = TASK_LINE.match(line)
        if match:
            if open_ is not None:
                raise ValueError(f"{path}:{number + 1}: task {match['id']} opens inside task "
                                 f"{open_[0]['id']} (line {open_[1] + 1}); close it with "
                                 f"'{END_LINE}' first")
            open_ = (match, number)
        elif line.strip() == END_LINE:
            if open_ is None:
                raise ValueError(f"{path}:{number + 1}: '{END_LINE}' without a '# task N.M: "
                                 f"title' line before it")
            match, start = open_
            if len(line) - len(line.lstrip(" ")) != len(match["indent"]):
                raise ValueError(f"{path}:{number + 1}: '{END_LINE}' must be indented like "
                                 f"its task line {start + 1}")
            needs_match = NEEDS.search(match["title"])
            needs = tuple(s.strip() for s in needs_match["ids"].split(",")) if needs_match else ()
            title = NEEDS.sub("", match["title"])
            blocks.append(Block(path, match["id"], title, needs, start, number,
                                len(match["indent"])))
            open_ = None
    if open_ is not None:
        raise ValueError(f"{path}:{open_[1] + 1}: task {open_[0]['id']} is never closed "
                         f"(a '{END_LINE}' line at its indentation)")
    return blocks


def find_tasks(root: str | Path, package: str = "nnprune") -> dict[str, Task]:
    """Every task marked in the package under ``root``, by id in course order."""
    root = Path(root)
    by_id: dict[str, list[Block]] = {}
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for block in find_blocks(path.read_text(encoding="utf-8"), rel):
            by_id.setdefault(block.task, []).append(block)
    tasks = {}
    for task_id in sorted(by_id, key=task_key):
        blocks = by_id[task_id]
        needs = tuple(sorted({n for b in blocks for n in b.needs}, key=task_key))
        tasks[task_id] = Task(task_id, blocks[0].title, needs, tuple(blocks))
    for task in tasks.values():
        for other in task.needs:
            if other not in tasks:
                raise ValueError(f"task {task.id} needs task {other}, which is not marked "
                                 f"anywhere (the tasks are {list(tasks)})")
    return tasks


def select_tasks(tasks: dict[str, Task], wanted: str | list[str] | None) -> list[str]:
    """Task ids from "2.3,3.1" (or a list); None means all. Unknown ids are an error."""
    if wanted is None:
        return list(tasks)
    items = wanted.split(",") if isinstance(wanted, str) else list(wanted)
    ids = [str(item).strip() for item in items if str(item).strip()]
    if not ids:
        raise ValueError(f"tasks must name at least one task, got {wanted!r}")
    for task_id in ids:
        if not TASK_ID.match(task_id):
            raise ValueError(f"tasks must be ids like 2.3 separated by commas, got {task_id!r}")
        if task_id not in tasks:
            raise ValueError(f"unknown task {task_id}; the tasks are {', '.join(tasks)}")
    return sorted(set(ids), key=task_key)


def stub_source(source: str, task_ids: set[str] | list[str], path: str = "<source>") -> str:
    """The source with the bodies of the blocks of ``task_ids`` replaced by one raise."""
    lines = source.splitlines(keepends=True)
    for block in reversed(find_blocks(source, path)):
        if block.task in task_ids:
            message = f"Task {block.task}: {block.title}"
            raise_line = " " * block.indent + f"raise NotImplementedError({message!r})\n"
            lines[block.start + 1:block.stop] = [raise_line]
    stubbed = "".join(lines)
    try:
        compile(stubbed, path, "exec")
    except SyntaxError as err:
        raise ValueError(f"{path}: stubbing tasks {sorted(task_ids)} leaves invalid Python "
                         f"({err.msg}, line {err.lineno}); mark whole statements") from None
    return stubbed


def restore_source(student: str, solution: str, task_id: str, path: str = "<source>") -> str:
    """The student's source with the blocks of ``task_id`` taken from the solution's source."""
    theirs = [b for b in find_blocks(student, path) if b.task == task_id]
    ours = [b for b in find_blocks(solution, path) if b.task == task_id]
    if len(theirs) != len(ours):
        raise ValueError(f"{path}: task {task_id} has {len(theirs)} block(s) in the student's "
                         f"source and {len(ours)} in the solution's")
    lines, solution_lines = student.splitlines(keepends=True), solution.splitlines(keepends=True)
    for mine, good in reversed(list(zip(theirs, ours))):
        lines[mine.start:mine.stop + 1] = solution_lines[good.start:good.stop + 1]
    return "".join(lines)
