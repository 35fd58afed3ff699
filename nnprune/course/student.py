"""The student copy: the project with the selected tasks' bodies replaced by a raise.

The copy holds the project's files (git's view, else all outside build and cache folders)
with the selected tasks stubbed and the tutorials' ``# solution`` blocks turned into
exercises; the hidden tests and ``tests/test_course_*.py`` (which compare a copy with the
solutions) stay out; ``TASKS.md`` says what to write.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nnprune.assignments import MARKER, make_exercise
from nnprune.course.tasks import Task, find_tasks, select_tasks, stub_source
from nnprune.files import atomic_write_text

HIDDEN = "tests/hidden"
INSTRUCTOR_TESTS = re.compile(r"tests/test_course_[^/]*\.py")
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist",
             ".ipynb_checkpoints"}


@dataclass(frozen=True)
class StudentCopy:
    """What ``write_student_copy`` wrote: the folder, the stubbed tasks, the file counts."""

    out: Path
    tasks: tuple[Task, ...]
    files: int
    exercises: int
    hidden: Path | None
    hidden_files: int

    def __str__(self) -> str:
        lines = [f"student copy: {self.out} ({self.files} files, {len(self.tasks)} tasks "
                 f"stubbed, {self.exercises} tutorials turned into exercises)"]
        lines += [f"  task {t.id}: {t.title}  [pytest -m {t.marker}]" for t in self.tasks]
        if self.hidden is not None:
            lines.append(f"hidden tests: {self.hidden} ({self.hidden_files} files; keep them "
                         f"apart, grade with --hidden)")
        return "\n".join(lines)


def _is_project(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "nnprune").is_dir()


def project_root(root: str | os.PathLike | None = None) -> Path:
    """The project folder: ``root``; else the checkout this package was installed from (an
    editable install), else the current folder."""
    if root is None:
        installed = Path(__file__).resolve().parents[2]
        root = installed if _is_project(installed) else Path.cwd()
    path = Path(root)
    if not _is_project(path):
        raise ValueError(f"source must be the nnprune project folder (with pyproject.toml, "
                         f"nnprune/ and tests/), got {path}; pass --source DIR with a checkout")
    return path


def project_files(root: Path) -> list[str]:
    """The project's files, relative posix paths: git's view when ``root`` is a checkout."""
    if (root / ".git").exists():
        done = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                              cwd=root, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return sorted(p for p in done.stdout.splitlines() if (root / p).is_file())
    files = []
    for here, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")
                   and not d.endswith(".egg-info")]
        files += [(Path(here) / n).relative_to(root).as_posix() for n in names
                  if not n.endswith(".pyc")]
    return sorted(files)


def _empty_target(name: str, path: Path) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{name} must be a new or empty folder, got {path} (not empty)")
    return path


def tasks_readme(tasks: list[Task]) -> str:
    """TASKS.md: the stubbed tasks, their files and the command that tests each one."""
    lines = ["# Tasks", "",
             "Each task is a function body in the package that raises "
             "`NotImplementedError(\"Task N.M: ...\")`.",
             "Write the code between the `# task N.M: ...` and `# end task` lines; then run "
             "that task's tests.", ""]
    for task in tasks:
        where = ", ".join(sorted({b.path for b in task.blocks}))
        needs = f" (after task {', '.join(task.needs)})" if task.needs else ""
        lines.append(f"- **{task.id}** {task.title}{needs}: `{where}`; "
                     f"`python -m pytest -m {task.marker}`")
    return "\n".join(lines) + "\n"


def write_student_copy(out: str | os.PathLike, tasks: str | list[str] | None = None,
                       root: str | os.PathLike | None = None,
                       hidden: str | os.PathLike | None = None) -> StudentCopy:
    """Write the student copy of the project under ``root`` to ``out`` (a new or empty folder).

    ``tasks``: "2.3,3.1" or a list of ids; None stubs every task. ``hidden``: a folder for the
    hidden tests (``tests/hidden``), which the student copy never contains.
    """
    root = project_root(root)
    out = _empty_target("out", Path(out).resolve())
    hidden_dir = None if hidden is None else _empty_target("hidden", Path(hidden).resolve())
    all_tasks = find_tasks(root)
    chosen = select_tasks(all_tasks, tasks)
    stubbed_files = {b.path for t in chosen for b in all_tasks[t].blocks}
    count = exercises = hidden_count = 0
    for rel in project_files(root):
        src = root / rel
        if (root / rel).resolve().is_relative_to(out) or (
                hidden_dir is not None and src.resolve().is_relative_to(hidden_dir)):
            continue
        if rel.startswith(HIDDEN + "/"):
            if hidden_dir is not None:
                target = hidden_dir / rel[len(HIDDEN) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
                hidden_count += 1
            continue
        if INSTRUCTOR_TESTS.fullmatch(rel):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in stubbed_files:
            atomic_write_text(target, stub_source(src.read_text(encoding="utf-8"),
                                                  set(chosen), rel))
        elif rel.startswith("tutorials/") and rel.endswith(".py") \
                and any(line.strip() == MARKER for line in src.read_text("utf-8").splitlines()):
            atomic_write_text(target, make_exercise(src.read_text(encoding="utf-8"), rel))
            exercises += 1
        else:
            shutil.copyfile(src, target)
        count += 1
    atomic_write_text(out / "TASKS.md", tasks_readme([all_tasks[t] for t in chosen]))
    return StudentCopy(out, tuple(all_tasks[t] for t in chosen), count + 1, exercises,
                       hidden_dir, hidden_count)
