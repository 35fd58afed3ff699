"""Every tutorial runs end to end in its fast mode: as a notebook through a Jupyter kernel
(nbclient, installed by the test extra), or as a script where Jupyter is not installed.
Tutorial 01 also always runs as a script, the way a student first meets it."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnprune.course.notebooks import notebook, percent_cells

pytestmark = [pytest.mark.tutorials, pytest.mark.slow]

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))
JUPYTER = all(importlib.util.find_spec(m) for m in ("nbclient", "nbformat", "ipykernel"))


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 4


def run_script(path, cwd):
    env = {**os.environ, "NNPRUNE_FAST": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(path)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def run_notebook(path, cwd, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("NNPRUNE_FAST", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.from_dict(notebook(percent_cells(path.read_text()), "tutorial", path.stem))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    if JUPYTER:
        run_notebook(path, tmp_path, monkeypatch)
    else:
        run_script(path, tmp_path)


def test_tutorial_01_runs_as_a_script(tmp_path):
    run_script(TUTORIALS[0], tmp_path)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_says_how_many_seeds_stand_behind_its_numbers(path):
    text = path.read_text()
    assert "one seed" in text or "seeds)" in text, path.name
