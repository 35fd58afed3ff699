"""Shared test configuration: hypothesis profiles, and the fixtures many test files use.

Profiles, chosen by HYPOTHESIS_PROFILE: ``dev`` (the default) is quick for a student editing
code; ``ci`` draws more examples, the same ones every run (derandomized); ``explore`` draws
new ones from the seed pytest prints (``--hypothesis-seed=N`` replays a run;
``HYPOTHESIS_EXAMPLES`` sets how many per test).

Fixtures:

- ``digits``: the bundled digits split with seed 0, built once per session; its arrays are
  read-only, so no test can change what the next one sees;
- ``cli``: the ``nnprune`` command run in this process, its exit status and output captured;
- ``trained_file``: model files trained by ``nnprune train`` once per session, for tests
  that read them (never write to one: save elsewhere, e.g. under ``tmp_path``);
- ``counts``: how many times a test's calls parsed a granularity and checked a sparsity.

Hypothesis strategies live in ``strategies.py``, finite-difference checks in ``gradcheck.py``.
"""
import os
import sys

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=80,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def digits():
    """``nnprune.data.digits(seed=0)``: x (N, 1, 8, 8) float32 standardised, y (N,) int64,
    1,438 training and 359 test images; the four arrays are read-only."""
    from nnprune.data import digits as load_digits

    data = load_digits(seed=0)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        array.flags.writeable = False
    return data


class CommandLine:
    """The ``nnprune`` command run in this process: ``cli(*argv)`` is (exit status, stdout,
    stderr), every argument passed through ``str`` (paths welcome)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv) -> tuple[int, str, str]:
        from nnprune.cli import main

        status = main([str(a) for a in argv])
        out, err = self.capsys.readouterr()
        return status, out, err

    @staticmethod
    def one_line(err: str) -> str:
        """The one line of ``err`` that is not blank; fails on a traceback or more lines."""
        lines = [line for line in err.splitlines() if line.strip()]
        assert "Traceback" not in err and len(lines) == 1, f"expected one line, got {err!r}"
        return lines[0]


@pytest.fixture
def cli(capsys):
    """``cli("prune", path, "--sparsity", 0.5)`` -> (status, out, err); ``cli.one_line(err)``."""
    return CommandLine(capsys)


@pytest.fixture(scope="session")
def trained_file(tmp_path_factory):
    """``trained_file(model, seed=0, epochs=1, width=0.5)``: the path of the file
    ``nnprune train --model model --seed seed --epochs epochs --width width --quiet``
    wrote; each distinct call trains once per session. Read it, never write to it."""
    from nnprune.cli import main

    made = {}

    def trained(model: str, seed: int = 0, epochs: int = 1, width: float = 0.5):
        key = (model, seed, epochs, width)
        if key not in made:
            path = tmp_path_factory.mktemp("trained") / f"{model}.npz"
            argv = ["train", "--model", model, "--seed", seed, "--epochs", epochs,
                    "--width", width, "--quiet", "--out", path]
            assert main([str(a) for a in argv]) == 0
            made[key] = path
        return made[key]

    return trained


@pytest.fixture
def counts(monkeypatch):
    """{"parse": n, "sparsity": n}: the granularity parses and the sparsity checks made,
    wherever in the package ``check_sparsity`` was imported to."""
    from nnprune import checks
    from nnprune.prune import granularity as granularity_module

    seen = {"parse": 0, "sparsity": 0}
    parse, check = granularity_module.parse, checks.check_sparsity

    def counting_parse(text):
        seen["parse"] += 1
        return parse(text)

    def counting_check(*args, **kwargs):
        seen["sparsity"] += 1
        return check(*args, **kwargs)

    monkeypatch.setattr(granularity_module, "parse", counting_parse)
    for name, module in list(sys.modules.items()):
        if name.startswith("nnprune") and getattr(module, "check_sparsity", None) is check:
            monkeypatch.setattr(module, "check_sparsity", counting_check)
    return seen
