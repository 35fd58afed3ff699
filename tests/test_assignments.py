"""Exercise files generated from solution files."""
import pytest

from nnprune.assignments import PLACEHOLDER, STUB, make_exercise, solution_spans, write_exercise

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
    assert ('    """|w|, elementwise."""\n    ' + PLACEHOLDER + "\n    " + STUB
            + "\n\n\ndef keep_me():") in exercise
    assert "def keep_me():\n    return 1\n" in exercise and 'print("done")' in exercise
    compile(exercise, "exercise", "exec")


def test_end_marker_stops_a_block_early():
    src = "x = 1\n# solution\ny = 2\n# end solution\nz = 3\n"
    assert make_exercise(src) == f"x = 1\n{PLACEHOLDER}\n{STUB}\nz = 3\n"
    assert solution_spans(src.splitlines(keepends=True)) == [(1, 3, 4)]


def test_an_unfilled_exercise_says_it_is_not_implemented():
    """A function whose whole body was the solution still compiles, and calling it raises
    NotImplementedError naming the exercise (not a TypeError on None or a NameError)."""
    namespace = {}
    exec(make_exercise("def f(x):\n    # solution\n    return x\n"), namespace)
    with pytest.raises(NotImplementedError, match="Exercise: write the code"):
        namespace["f"](1)


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
