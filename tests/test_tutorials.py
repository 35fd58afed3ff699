"""Every tutorial runs end to end (in its fast mode) as a script, as a student would run it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tutorials, pytest.mark.slow]

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 4


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path):
    env = {**os.environ, "NNPRUNE_FAST": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
