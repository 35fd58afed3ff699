"""Exercise files generated from solution files."""
import pytest

from nnprune.assignments import PLACEHOLDER, make_exercise, write_exercise

pytestmark = pytest.mark.tutorials

SOLUTION = '''\
import numpy as np


def magnitude(w):
    """|w|, elementwise."""
    # solution
    scores = np.abs(w)

    return scores


def keep_me():
    return 1


# %%
# solution
total = magnitude(np.ones(3)).sum()
# %%
print("done")
'''


def test_solution_blocks_become_placeholders_and_the_rest_is_kept():
    """Only the code after each marker changes; the spacing after a block is kept."""
    exercise = make_exercise(SOLUTION)
    assert "np.abs" not in exercise and "total =" not in exercise
    assert exercise.count(PLACEHOLDER) == 2
    assert '    """|w|, elementwise."""\n    ' + PLACEHOLDER + "\n\n\ndef keep_me():" in exercise
    assert "def keep_me():\n    return 1\n" in exercise and 'print("done")' in exercise
    compile(exercise, "exercise", "exec")


def test_end_marker_stops_a_block_early():
    src = "x = 1\n# solution\ny = 2\n# end solution\nz = 3\n"
    assert make_exercise(src) == f"x = 1\n{PLACEHOLDER}\nz = 3\n"


def test_a_function_left_without_a_body_is_reported():
    with pytest.raises(ValueError, match="would not compile"):
        make_exercise("def f(x):\n    # solution\n    return x\n")


def test_no_marker_and_wrong_types_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no '# solution' marker"):
        make_exercise("x = 1\n")
    with pytest.raises(TypeError, match="source"):
        make_exercise(b"x = 1")
    path = tmp_path / "s.py"
    path.write_text(SOLUTION)
    with pytest.raises(ValueError, match="must differ"):
        write_exercise(path, path)
    with pytest.raises(TypeError, match="exercise must be a path"):
        write_exercise(path, None)
    with pytest.raises(TypeError, match="solution must be a path"):
        write_exercise(3, tmp_path / "e.py")


def test_write_exercise_writes_the_file(tmp_path):
    src = tmp_path / "solution.py"
    src.write_text(SOLUTION)
    out = write_exercise(src, tmp_path / "ex" / "exercise.py")
    assert out.read_text() == make_exercise(SOLUTION)
    assert [p.name for p in out.parent.iterdir()] == ["exercise.py"]
