"""The course's task markers: found, stubbed, restored; the student copy and its grading."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nnprune.cli import main
from nnprune.course.grading import needing, run_tests
from nnprune.course.student import write_student_copy
from nnprune.course.tasks import (find_blocks, find_tasks, restore_source, select_tasks,
                                  stub_source)

pytestmark = pytest.mark.course

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''\
def f(x):
    """Twice x.

    Markers quoted in a docstring are text:
        # task 9.9: not a task
        # end task
    """
    y = x
    # task 1.2: double it
    y = 2 * y
    # end task
    return y


def g(x):
    if x:
        # task 1.3: negate it (needs 1.2)
        return -f(x)
        # end task
    return 0
'''


def test_blocks_are_found_in_comments_only_with_their_titles_and_needs():
    blocks = find_blocks(SOURCE)
    assert [(b.task, b.title, b.needs, b.indent) for b in blocks] == [
        ("1.2", "double it", (), 4), ("1.3", "negate it", ("1.2",), 8)]


def test_stub_raises_the_task_and_restore_gives_the_solution_back():
    """Stubbing keeps the marker lines; restoring one task puts back exactly its body."""
    student = stub_source(SOURCE, {"1.2", "1.3"})
    assert "2 * y" not in student and "return -f(x)" not in student
    namespace = {}
    exec(compile(student, "student", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^Task 1\.2: double it$"):
        namespace["f"](3)
    with pytest.raises(NotImplementedError, match=r"^Task 1\.3: negate it$"):
        namespace["g"](3)
    assert namespace["g"](0) == 0  # code outside the blocks still runs
    half = restore_source(student, SOURCE, "1.2")
    exec(compile(half, "half", "exec"), namespace)
    assert namespace["f"](3) == 6
    assert restore_source(half, SOURCE, "1.3") == SOURCE
    assert stub_source(SOURCE, set()) == SOURCE


@pytest.mark.parametrize("source, message", [
    ("    # task 1.1: a\n    # task 1.2: b\n    # end task\n", "opens inside task 1.1"),
    ("x = 1\n# end task\n", "without a '# task N.M: title' line"),
    ("def f():\n    # task 1.1: a\n    return 1\n", "never closed"),
    ("def f():\n    # task 1.1: a\n    return 1\n# end task\n", "indented like"),
])
def test_unpaired_markers_are_errors(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        find_blocks(source, "x.py")


def test_a_stub_that_leaves_invalid_python_is_refused():
    with pytest.raises(ValueError, match="invalid Python"):
        stub_source("x = [\n# task 1.1: a\n1,\n# end task\n]\n", {"1.1"}, "x.py")


def test_task_selection_names_unknown_and_malformed_ids():
    tasks = find_tasks(ROOT)
    assert select_tasks(tasks, "3.1, 2.1") == ["2.1", "3.1"]
    with pytest.raises(ValueError, match="unknown task 9.9; the tasks are 1.1"):
        select_tasks(tasks, "9.9")
    with pytest.raises(ValueError, match="ids like 2.3"):
        select_tasks(tasks, "two")
    with pytest.raises(ValueError, match="at least one task"):
        select_tasks(tasks, " , ")


def test_every_task_has_a_registered_marker_tests_and_hidden_tests():
    """Each marked task: its taskN_M marker in pyproject.toml, tests for the students, and
    tests kept hidden; the dependencies it declares exist."""
    tasks = find_tasks(ROOT)
    assert len(tasks) >= 9
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    registered = {m.split(":")[0] for m in config["tool"]["pytest"]["ini_options"]["markers"]}
    visible = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    hidden = "".join(p.read_text() for p in (ROOT / "tests" / "hidden").glob("test_*.py"))
    for task in tasks.values():
        assert task.marker in registered, task.id
        assert f"mark.{task.marker}\n" in visible, task.id
        assert f"mark.{task.marker}\n" in hidden, task.id
    assert needing(tasks, "2.1") == {"2.1", "2.3"}


def test_the_student_copy_holds_the_project_with_the_tasks_stubbed(tmp_path):
    copy = write_student_copy(tmp_path / "s", "2.2,3.2", ROOT, tmp_path / "h")
    out = copy.out
    assert [t.id for t in copy.tasks] == ["2.2", "3.2"]
    masks = (out / "nnprune/prune/masks.py").read_text()
    assert masks.count("raise NotImplementedError('Task 2.2: the percentile mask')") == 2
    assert "float(np.percentile(scores, q))" not in masks
    assert "0.5 * h_diag * w * w" not in (out / "nnprune/prune/hessian.py").read_text()
    assert (out / "nnprune/prune/scope.py").read_text() == (
        ROOT / "nnprune/prune/scope.py").read_text()  # task 2.3 was not selected
    for name in ("pyproject.toml", "README.md", "tests/conftest.py", "TASKS.md"):
        assert (out / name).is_file(), name
    assert not (out / "tests/hidden").exists()
    assert not list((out / "tests").glob("test_course_*.py"))
    assert (out / "tests/test_tasks_engine_masks.py").is_file()
    assert (tmp_path / "h/test_hidden_tasks.py").is_file()
    assert "# solution" not in (out / "tutorials/05_obd_obs.py").read_text()
    assert "pytest -m task2_2" in (out / "TASKS.md").read_text()
    with pytest.raises(ValueError, match="must be a new or empty folder"):
        write_student_copy(out, "2.2", ROOT)


def test_student_copy_fails_its_tasks_tests_on_their_stubs_and_passes_after_restoring(tmp_path):
    """Generated into tmp: the stubbed tasks' tests all fail with their own
    NotImplementedError, an unrelated task's tests pass, and putting one solution back makes
    its tests pass."""
    out = write_student_copy(tmp_path / "s", "2.2,3.2", ROOT).out
    done = subprocess.run([sys.executable, "-c", "import nnprune; print(nnprune.__file__)"],
                          cwd=out, capture_output=True, text=True, env={"PYTHONPATH": str(out)})
    assert done.stdout.strip() == str(out / "nnprune" / "__init__.py")
    tasks = find_tasks(out)
    results = run_tests(out, [tasks["2.2"], tasks["3.2"], tasks["3.1"]])
    for stubbed in ("2.2", "3.2"):
        assert results[stubbed].passed == 0 and results[stubbed].not_implemented, stubbed
        assert results[stubbed].first_failure.startswith(f"NotImplementedError: Task {stubbed}")
    assert results["3.1"].failed == 0 and results["3.1"].passed >= 2
    masks = out / "nnprune/prune/masks.py"
    masks.write_text(restore_source(masks.read_text(), (ROOT / "nnprune/prune/masks.py")
                                    .read_text(), "2.2"))
    again = run_tests(out, [tasks["2.2"]])["2.2"]
    assert again.failed == 0 and again.passed == results["2.2"].total


def test_assignment_commands(tmp_path, capsys):
    assert main(["assignment", "list"]) == 0
    assert "2.3   one top-k ranking across layers" in capsys.readouterr().out
    assert main(["assignment", "make", "--out", str(tmp_path / "s"), "--tasks", "4.1"]) == 0
    assert "task 4.1: MAC counting" in capsys.readouterr().out
    assert main(["assignment", "make", "--out", str(tmp_path / "t"), "--tasks", "9.9"]) == 1
    assert "unknown task 9.9" in capsys.readouterr().err
    assert main(["assignment", "grade", str(tmp_path / "nowhere")]) == 1
    assert "copy must be a folder holding nnprune/ and tests/" in capsys.readouterr().err
