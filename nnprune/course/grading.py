"""Grading: run each task's tests (pytest marker ``taskN_M``) against a copy of the project.

``grade`` runs the tasks' tests in one pytest inside the copy (hidden tests added if given);
a task scores the fraction of its tests that pass. ``cross_check`` is the instructor's proof
that the tests fit the tasks: with only one task stubbed, all of its tests fail on its
NotImplementedError and the tests of every task that does not need it pass.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from nnprune.course.tasks import Task, find_tasks, select_tasks


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task's tests: counts, and the first failure's message."""

    task: str
    title: str
    passed: int
    failed: int
    not_implemented: bool
    first_failure: str = ""

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass(frozen=True)
class Grade:
    """Every task's result; ``score`` is the mean of the task scores (each task counts once)."""

    results: tuple[TaskResult, ...]
    hidden: bool = False

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results) / len(self.results) if self.results else 0.0

    def to_dict(self) -> dict:
        return {"score": self.score, "hidden": self.hidden,
                "tasks": [{**asdict(r), "score": r.score} for r in self.results]}

    def __str__(self) -> str:
        lines = [f"{'task':<6} {'passed':>7} {'score':>6}  title"]
        for r in self.results:
            state = "  (not implemented)" if r.not_implemented else ""
            lines.append(f"{r.task:<6} {r.passed:>3}/{r.total:<3} {r.score:>6.0%}  "
                         f"{r.title}{state}")
        lines.append(f"total: {self.score:.1%} (each task counts once"
                     f"{'; hidden tests included' if self.hidden else ''})")
        return "\n".join(lines)


PLUGIN = """# Records each test's task markers and outcome for nnprune's grading (a pytest plugin).
import json
import os

_outcomes = {}


def pytest_collection_modifyitems(items):
    try:  # a failing example is reported as it is: shrinking it only costs time here
        from hypothesis import Phase, settings
    except ImportError:
        pass
    else:
        settings.register_profile("nnprune-grading", settings.default, database=None,
                                  phases=[Phase.explicit, Phase.reuse, Phase.generate])
        settings.load_profile("nnprune-grading")
    for item in items:
        tasks = sorted({m.name for m in item.iter_markers() if m.name.startswith("task")})
        _outcomes[item.nodeid] = {"tasks": tasks, "failed": False, "message": ""}


def pytest_runtest_logreport(report):
    entry = _outcomes.get(report.nodeid)
    if entry is not None and report.failed and not entry["failed"]:
        entry["failed"], entry["message"] = True, report.longreprtext[-4000:]


def pytest_sessionfinish(session):
    with open(os.environ["NNPRUNE_GRADING_OUT"], "w", encoding="utf-8") as f:
        json.dump(_outcomes, f)
"""


def run_tests(copy: Path, tasks: list[Task], hidden: Path | None = None,
              timeout: float = 900) -> dict[str, TaskResult]:
    """One pytest run in ``copy`` of the tests marked with any of ``tasks``; a result per task."""
    folders = [copy / "tests"] + ([hidden] if hidden is not None else [])
    files = sorted(p for folder in folders for p in folder.rglob("test_*.py")  # that mark them
                   if any(t.marker in p.read_text(encoding="utf-8") for t in tasks))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "nnprune_grading_plugin.py").write_text(PLUGIN, encoding="utf-8")
        out = Path(tmp) / "outcomes.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy), tmp]),
               "MPLBACKEND": "Agg", "NNPRUNE_GRADING_OUT": str(out)}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "nnprune_grading_plugin",
                               "-m", " or ".join(t.marker for t in tasks), *map(str, files)],
                              cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if not files or not out.is_file():
            raise RuntimeError(f"pytest did not run the tasks' tests in {copy}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        outcomes = json.loads(out.read_text(encoding="utf-8"))
    results = {}
    for task in tasks:
        mine = [o for o in outcomes.values() if task.marker in o["tasks"]]
        if not mine:
            raise ValueError(f"task {task.id} has no tests in {', '.join(map(str, folders))} "
                             f"(none marked {task.marker})")
        failures = [o["message"] for o in mine if o["failed"]]
        stub = f"NotImplementedError: {task.message}"
        first = next((line[1:].strip() for line in (failures or [""])[0].splitlines()
                      if line.startswith("E ")), (failures or [""])[0][:200])
        results[task.id] = TaskResult(task.id, task.title, len(mine) - len(failures),
                                      len(failures),
                                      bool(failures) and all(stub in m for m in failures),
                                      first[:300])
    return results


def grade(copy: str | os.PathLike, tasks: str | list[str] | None = None,
          hidden: str | os.PathLike | None = None) -> Grade:
    """Score the tasks in ``copy`` (None: every task marked there) by their tests."""
    copy = Path(copy).resolve()
    if not (copy / "tests").is_dir() or not (copy / "nnprune").is_dir():
        raise ValueError(f"copy must be a folder holding nnprune/ and tests/, got {copy}")
    hidden_dir = None if hidden is None else Path(hidden).resolve()
    if hidden_dir is not None and not hidden_dir.is_dir():
        raise ValueError(f"hidden must be the folder of hidden tests, got {hidden_dir}")
    all_tasks = find_tasks(copy)
    chosen = [all_tasks[t] for t in select_tasks(all_tasks, tasks)]
    results = run_tests(copy, chosen, hidden_dir)
    return Grade(tuple(results[t.id] for t in chosen), hidden=hidden_dir is not None)


def write_grade(grade_: Grade, path: str | os.PathLike) -> Path:
    from nnprune.files import atomic_write_text
    return atomic_write_text(Path(path), json.dumps(grade_.to_dict(), indent=2) + "\n")


def needing(tasks: dict[str, Task], task_id: str) -> set[str]:
    """The tasks that need ``task_id``, directly or through others (itself included)."""
    out = {task_id}
    while more := {t.id for t in tasks.values() if out.intersection(t.needs)} - out:
        out |= more
    return out


def cross_check(root: str | os.PathLike | None, tasks: str | list[str] | None,
                workdir: str | os.PathLike, log=print) -> list[str]:
    """For each task: a copy with only it stubbed fails all its tests with its stub and
    passes the tests of every task that does not need it. The problems found (empty: none)."""
    from nnprune.course.student import project_root, write_student_copy

    root = project_root(root)
    all_tasks = find_tasks(root)
    problems = []
    for task_id in select_tasks(all_tasks, tasks):
        out = Path(workdir) / f"only-{task_id}"
        write_student_copy(out, [task_id], root)
        results = run_tests(out, list(all_tasks.values()))
        own = results[task_id]
        if own.passed or not own.not_implemented:
            problems.append(f"task {task_id}: with its body stubbed {own.passed}/{own.total} "
                            f"of its tests pass; first failure: {own.first_failure!r}")
        others = [t for t in all_tasks if t not in needing(all_tasks, task_id)]
        for other in others:
            if results[other].failed:
                problems.append(f"task {task_id} stubbed breaks task {other}'s tests: "
                                f"{results[other].first_failure!r}")
        log(f"task {task_id}: {own.failed}/{own.total} of its tests fail on its stub; the "
            f"tests of {len(others)} other task(s) pass: "
            f"{all(not results[o].failed for o in others)}")
    return problems
