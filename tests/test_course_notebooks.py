"""Tutorials as notebooks: the percent format read, nbgrader's metadata written, and the
exercise notebooks graded: the student's scores 0, the solution full marks."""
import json
import re
from pathlib import Path

import pytest

from nnprune.cli import main
from nnprune.course.notebooks import (BEGIN, CLEARED, END, notebook, percent_cells, score)

pytestmark = pytest.mark.course

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

SCRIPT = '''\
# ---
# jupyter:
#   jupytext:
#     text_representation:
#       format_name: percent
# ---

# %% [markdown]
# # Title
#
# Some *prose*.

# %%
import math


def area(r):
    """A disk's area."""
    # solution
    return math.pi * r * r


# %% tags=["check"]
assert abs(area(2.0) - 4 * math.pi) < 1e-12

# %%
print(area(1.0))
'''


def nbgrader_problems(cell):
    """nbgrader's cell metadata rules (schema version 3, as its validator documents them)."""
    meta = cell["metadata"].get("nbgrader")
    if meta is None:
        return []
    problems = []
    allowed = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points",
               "checksum", "cell_type"}
    problems += [f"unknown key {k}" for k in meta if k not in allowed]
    problems += [f"missing {k}" for k in ("schema_version", "grade", "locked", "solution")
                 if k not in meta]
    if meta.get("schema_version") != 3:
        problems.append("schema_version must be 3")
    if (meta.get("grade") or meta.get("solution") or meta.get("locked")) and \
            not re.fullmatch(r"[a-zA-Z0-9_\-]+", meta.get("grade_id", "")):
        problems.append(f"bad grade_id {meta.get('grade_id')!r}")
    if meta.get("grade") and not (isinstance(meta.get("points"), (int, float))
                                  and meta["points"] >= 0):
        problems.append("a graded cell needs points >= 0")
    if cell["cell_type"] == "markdown" and meta.get("grade") != meta.get("solution"):
        problems.append("a graded markdown cell must also be a solution")
    return problems


def test_percent_cells_reads_markdown_code_and_check_cells():
    cells = percent_cells(SCRIPT)
    assert [(c.kind, c.tags) for c in cells] == [("markdown", ()), ("code", ()),
                                                 ("code", ("check",)), ("code", ())]
    assert cells[0].source == "# Title\n\nSome *prose*."
    assert cells[1].has_solution and cells[2].is_check and not cells[3].is_check
    with pytest.raises(ValueError, match="a cell line must be"):
        percent_cells("# %% [raw]\nx\n")
    with pytest.raises(ValueError, match="kind must be one of"):
        notebook(cells, "release")


def test_source_and_student_notebooks_carry_nbgrader_metadata():
    cells = percent_cells(SCRIPT)
    source, student = notebook(cells, "source", "disk"), notebook(cells, "student", "disk")
    for nb in (source, student):
        assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == "python3"
        assert [p for c in nb["cells"] for p in nbgrader_problems(c)] == []
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]
               if "nbgrader" in c["metadata"]]
        assert len(ids) == len(set(ids)) == 3
    solution, check = source["cells"][1], source["cells"][2]
    assert solution["metadata"]["nbgrader"]["solution"] is True
    assert f"    {BEGIN}\n    return math.pi * r * r\n    {END}" in solution["source"]
    assert check["metadata"]["nbgrader"] == {"schema_version": 3, "task": False,
                                             "grade_id": "disk-check-2", "grade": True,
                                             "locked": True, "solution": False, "points": 1}
    cleared = student["cells"][1]["source"]
    assert "math.pi * r * r" not in cleared and f"    {CLEARED[0]}\n    {CLEARED[1]}" in cleared
    nbformat = pytest.importorskip("nbformat")
    for nb in (source, student, notebook(cells, "tutorial", "disk")):
        nbformat.validate(nbformat.from_dict(nb))


def test_the_student_notebook_scores_zero_and_the_solution_full_marks(tmp_path):
    cells = percent_cells(SCRIPT)
    full = score(notebook(cells, "source", "disk"), tmp_path)
    assert (full.earned, full.possible) == (1.0, 1.0)
    empty = score(notebook(cells, "student", "disk"), tmp_path)
    assert (empty.earned, empty.possible) == (0.0, 1.0)
    assert "NameError" in empty.tests[0][2] or "NotImplementedError" in empty.tests[0][2]


def test_every_tutorial_exercise_has_a_check_and_exports(tmp_path):
    """Each '# solution' cell of a tutorial is followed by a check cell; the export writes
    the tutorial, nbgrader's source version and the student's version of each."""
    assert main(["assignment", "notebooks", "--out", str(tmp_path)]) == 0
    for path in TUTORIALS:
        cells = percent_cells(path.read_text())
        solutions = [i for i, c in enumerate(cells) if c.has_solution]
        for i in solutions:
            assert any(c.is_check for c in cells[i + 1:i + 3]), (path.name, i)
        assert (tmp_path / f"{path.stem}.ipynb").is_file()
        assert (tmp_path / "source" / "tutorials" / f"{path.stem}.ipynb").is_file() \
            == bool(solutions)
    nb = json.loads((tmp_path / "student" / "02_magnitude_masks.ipynb").read_text())
    assert [p for c in nb["cells"] for p in nbgrader_problems(c)] == []


@pytest.mark.slow
def test_a_tutorial_exercise_notebook_grades_zero_unfilled_and_full_when_solved(tmp_path):
    """Tutorial 02 in fast mode, graded as nbgrader autograde would: every test cell fails
    on the unfilled student notebook and passes on the instructor's."""
    cells = percent_cells((ROOT / "tutorials" / "02_magnitude_masks.py").read_text())
    env = {"NNPRUNE_FAST": "1", "MPLBACKEND": "Agg"}
    solved = score(notebook(cells, "source", "02"), tmp_path, env)
    unfilled = score(notebook(cells, "student", "02"), tmp_path, env)
    assert solved.possible >= 1 and solved.earned == solved.possible
    assert unfilled.possible == solved.possible and unfilled.earned == 0


def test_bad_input_is_named(tmp_path, capsys):
    bad = tmp_path / "x.ipynb"
    bad.write_text("not json")
    assert main(["assignment", "score", str(bad)]) == 1
    assert "is not a notebook (JSON)" in capsys.readouterr().err
    assert main(["assignment", "notebooks", "--out", str(tmp_path / "nb"),
                 "--source", str(tmp_path)]) == 1
    assert "source must be the nnprune project folder" in capsys.readouterr().err
