"""PruneReport: counts, the two overall figures, JSON round trip, the table; and the pruning
core's imports (numpy only, never the engine)."""
import ast
import doctest
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnprune.prune
from nnprune.prune import PruneReport
from nnprune.prune import report as report_module
from strategies import mask_dicts

pytestmark = pytest.mark.masks


@given(mask_dicts(), st.none() | st.floats(0, 1))
def test_report_counts_zeros_per_layer_and_overall(masks_excluded, target):
    """layers[name] == (size, zeros); ``sparsity`` is zeros/entries over the non-excluded
    tensors, ``sparsity_all`` over all of them; to_dict survives JSON and from_dict inverts it."""
    masks, excluded = masks_excluded
    report = PruneReport.from_masks(masks, excluded, target)
    for name, m in masks.items():
        assert report.layers[name] == (m.size, int((m == 0).sum()))
        assert report.per_layer[name] == ((m == 0).sum() / m.size if m.size else 0.0)
    pruned = [m for name, m in masks.items() if name not in excluded]
    n = sum(m.size for m in pruned)
    assert report.n == n and report.zeros == sum(int((m == 0).sum()) for m in pruned)
    assert report.sparsity == (report.zeros / n if n else 0.0)
    every = sum(m.size for m in masks.values())
    assert report.sparsity_all == pytest.approx(
        sum(int((m == 0).sum()) for m in masks.values()) / every)
    data = json.loads(json.dumps(report.to_dict()))
    assert PruneReport.from_dict(data) == report
    assert data["sparsity"] == report.sparsity and data["target"] == report.target


def test_report_table_lists_every_layer_and_the_totals():
    """__str__: a header, one row per tensor (excluded ones marked), the pruned-tensor total,
    the all-tensor total when something is excluded, and the target."""
    masks = {"conv.weight": np.array([0.0, 0.0, 0.0, 1.0]), "fc.weight": np.ones(6)}
    text = str(PruneReport.from_masks(masks, ["fc.weight"], target=0.75))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "entries", "zeros", "sparsity"]
    row = next(line for line in lines if line.startswith("conv.weight"))
    assert row.split() == ["conv.weight", "4", "3", "75.00%"]
    row = next(line for line in lines if line.startswith("fc.weight"))
    assert row.split() == ["fc.weight", "6", "0", "0.00%", "excluded"]
    assert next(line for line in lines if line.startswith("all tensors")).split()[-1] == "30.00%"
    assert next(line for line in lines if line.startswith("target")).split()[-1] == "75.00%"


def test_docstring_examples():
    """The example in the module docstring runs as written."""
    result = doctest.testmod(report_module)
    assert result.attempted >= 2 and result.failed == 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: PruneReport.from_masks([np.ones(2)]), TypeError, "masks must be a mapping"),
    (lambda: PruneReport.from_masks({"a": np.ones(2)}, ["b"]), ValueError, r"\['b'\]"),
    (lambda: PruneReport.from_dict({"layers": {}}), ValueError, "not a PruneReport dict"),
    (lambda: PruneReport.from_dict({"layers": {"a": {"n": 2}}, "excluded": [], "target": None}),
     ValueError, "zeros"),
    (lambda: PruneReport().sparsity_of("a"), KeyError, "no layer 'a'"),
])
def test_bad_input_is_rejected(call, error, match):
    """Non-mapping masks, unknown excluded names, malformed dicts, unknown layers."""
    with pytest.raises(error, match=match):
        call()


CORE = ("scores", "masks", "scope", "groups", "schedules", "report", "hessian")


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_numpy_and_itself_only(module):
    """Arrays in, arrays out: the core modules import the standard library, numpy and
    nnprune.prune.* (never nnprune.nn, nnprune.autograd or another framework), and
    nnprune.foreign, which imports nothing and refuses other frameworks' tensors,
    nnprune.checks, the argument checks (numpy and nnprune.foreign only), and nnprune.ratios,
    the rule for dividing counts (imports nothing)."""
    path = Path(nnprune.prune.__file__).with_name(f"{module}.py")
    allowed = {"__future__", "math", "numbers", "re", "dataclasses", "typing", "functools",
               "numpy"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in allowed or name.startswith("nnprune.prune.") \
                or name in ("nnprune.foreign", "nnprune.checks", "nnprune.ratios"), \
                f"{module}.py imports {name}"
