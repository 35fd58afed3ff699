"""Specs: a granularity parsed once and what it knows; a PruneSpec checked on construction;
the shared argument checks."""
import ast
import copy
import doctest
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnprune
from nnprune import checks
from nnprune.prune import granularity as granularity_module
from nnprune.prune.granularity import NM_TOLERANCE, Granularity, as_granularity
from nnprune.prune.groups import granularity_mask, parse_granularity
from nnprune.prune import spec as spec_module
from nnprune.prune.spec import IN_EXCLUDE, ObsSettings, PruneSpec

pytestmark = pytest.mark.masks

NAMES = ["0.weight", "3.weight", "6.weight"]


def test_a_granularity_is_its_string_and_knows_what_it_means():
    g = Granularity("2:4")
    assert g == "2:4" and isinstance(g, str) and repr(g) == "'2:4'"
    assert (g.kind, g.nm, g.is_nm, g.groups, g.units) == ("N:M", (2, 4), True, False, False)
    assert json.dumps({"granularity": g}) == '{"granularity": "2:4"}'
    f = Granularity("filter")
    assert (f.kind, f.nm, f.fixed_sparsity, f.groups, f.units) == ("filter", None, None, True,
                                                                   True)
    assert Granularity("kernel").axes((8, 3, 5, 5)) == (2, 3)
    assert Granularity("channel").axes((10, 4)) == (0,)
    assert Granularity("weight").axes((10, 4)) == ()


def test_a_parsed_granularity_is_not_parsed_again(monkeypatch):
    g = Granularity("filter")
    calls = []
    monkeypatch.setattr(granularity_module, "parse", lambda text: calls.append(text))
    assert Granularity(g) is g and as_granularity(g) is g
    assert calls == []


def test_a_granularity_cannot_change_and_survives_pickle_and_copy():
    g = Granularity("1:4")
    with pytest.raises(AttributeError):
        g.n = 2
    for other in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
        assert isinstance(other, Granularity) and other.nm == (1, 4) and other == g


@pytest.mark.parametrize("text, error, match", [
    (3, TypeError, "granularity must be a string"),
    ("row", ValueError, "granularity must be one of"),
    ("4:2", ValueError, "N <= M"),
    ("0:4", ValueError, "N <= M"),
])
def test_bad_granularities_are_refused_clearly(text, error, match):
    with pytest.raises(error, match=match):
        Granularity(text)


@given(st.integers(1, 8), st.integers(0, 8))
def test_n_m_fixes_the_sparsity_in_one_place(n, extra):
    """1 − N/M is the target, None means it, a value within NM_TOLERANCE is accepted and a
    further one refused; the old parser's plain form stays (n, m)."""
    m = n + extra
    g = Granularity(f"{n}:{m}")
    assert g.fixed_sparsity == 1 - n / m == g.target(None) == g.target(1 - n / m + NM_TOLERANCE / 2)
    assert parse_granularity(f"{n}:{m}") == (n, m)
    with pytest.raises(ValueError, match=f"fixes sparsity at 1 - {n}/{m}"):
        g.target(1 - n / m + 1e-6 if n < m else 0.5)


def test_a_granularity_without_a_fixed_sparsity_needs_one():
    assert Granularity("kernel").target(0.25) == 0.25
    with pytest.raises(TypeError, match="sparsity is required"):
        Granularity("weight").target(None)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Granularity("weight").target(1.5)


@pytest.mark.parametrize("text, shape, fits", [
    ("weight", (3,), True), ("kernel", (4, 2, 3, 3), True), ("kernel", (4, 2), False),
    ("filter", (4, 2), True), ("neuron", (5,), False), ("channel", (4, 2, 1, 1), True),
    ("2:4", (3, 8), True), ("2:4", (3, 6), False), ("2:4", (3, 8, 3, 3), True),
    ("1:2", (4,), False),
])
def test_fits_agrees_with_the_mask_functions(text, shape, fits):
    """A granularity fits a weight shape exactly when its mask can be built on it."""
    g = Granularity(text)
    assert g.fits(shape) is fits and (g.unfit(shape) is None) is fits
    if fits:
        granularity_mask(np.ones(shape), None if g.is_nm else 0.5, g)
    else:
        with pytest.raises(ValueError, match=re.escape(g.unfit(shape))):
            granularity_mask(np.ones(shape), None if g.is_nm else 0.5, g)


def test_the_weights_a_granularity_cannot_group_are_named():
    shapes = {"0.weight": (8, 4, 3, 3), "3.weight": (10, 6)}
    assert Granularity("kernel").unfit_names(shapes) == ["3.weight"]
    assert Granularity("2:4").unfit_names(shapes) == ["3.weight"]
    assert Granularity("filter").unfit_names(shapes) == Granularity("weight").unfit_names({}) == []
    with pytest.raises(ValueError, match=r"'kernel' needs conv weights .*3.weight \(10, 6\)"):
        Granularity("kernel").unfit_names({"3.weight": (10, 6)})


def test_the_spared_weight_and_why():
    assert Granularity("neuron").spares(NAMES) == {"6.weight": "its units are the classes"}
    assert Granularity("channel").spares(NAMES) == {"0.weight": "its input channels are the "
                                                                "image's"}
    assert Granularity("weight").spares(NAMES) == Granularity("2:4").spares(NAMES) == {}
    assert Granularity("filter").spares([]) == {}


def test_a_spec_lists_what_it_excludes_and_why():
    spec = PruneSpec("l1_norm", 0.5, granularity="filter", exclude="3.weight")
    assert spec.exclude == ("3.weight",)
    assert spec.exclusions(NAMES) == {"3.weight": IN_EXCLUDE,
                                      "6.weight": "its units are the classes"}
    assert spec.targets(NAMES) == {"0.weight": 0.5}
    assert PruneSpec(granularity="filter", prune_io=True).exclusions(NAMES) == {}
    assert PruneSpec(granularity="channel", exclude=["0.weight"]).exclusions(NAMES) == {
        "0.weight": IN_EXCLUDE}
    with pytest.raises(ValueError, match="which is not a prunable weight of the model"):
        PruneSpec(exclude=["9.weight"]).exclusions(NAMES)


def test_a_spec_resolves_n_m_and_per_layer_targets():
    spec = PruneSpec("magnitude", None, granularity="2:4")
    assert spec.sparsity == spec.target == 0.5 and isinstance(spec.granularity, Granularity)
    layer = PruneSpec(sparsity={"0.weight": 0.3, "6.weight": 1})
    assert layer.per_layer and layer.target is None
    assert layer.targets(NAMES) == {"0.weight": 0.3, "6.weight": 1.0}
    with pytest.raises(ValueError, match="unknown layer name '9.weight' in sparsity"):
        PruneSpec(sparsity={"9.weight": 0.3}).targets(NAMES)
    assert spec.replace(scope="global").scope == "global"
    with pytest.raises(ValueError, match="fixes sparsity"):
        spec.replace(sparsity=0.9)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(criterion="size"), ValueError, "unknown criterion 'size'"),
    (dict(scope="row"), ValueError, "scope must be one of"),
    (dict(sparsity=1.2), ValueError, r"sparsity must be in \[0, 1\]"),
    (dict(sparsity="0.5"), TypeError, "sparsity must be a real number"),
    (dict(sparsity=None), TypeError, "sparsity is required"),
    (dict(sparsity={"a": 0.5}, scope="global"), ValueError, "needs scope='layer'"),
    (dict(sparsity={"a": 0.5}, granularity="2:4"), ValueError, "per-layer sparsity dict"),
    (dict(sparsity={"a": -0.1}), ValueError, r"sparsity\['a'\] must be in"),
    (dict(granularity="2:4", sparsity=0.3), ValueError, "fixes sparsity"),
    (dict(granularity=4), TypeError, "granularity must be a string"),
    (dict(exclude=[3]), TypeError, "exclude must hold parameter names"),
    (dict(min_keep=-1), ValueError, "min_keep must be an int >= 0"),
    (dict(min_keep=True), ValueError, "min_keep must be an int >= 0"),
    (dict(prune_io=1), TypeError, "prune_io must be a bool"),
    (dict(rounding="down"), ValueError, "rounding must be one of"),
    (dict(reduce="max"), ValueError, "reduce must be one of"),
    (dict(layer_norm="l3"), ValueError, "layer_norm must be one of"),
    (dict(criterion="fpgm"), ValueError, "ranks whole units"),
    (dict(criterion="magnitude", layer_norm="max", granularity="kernel"), ValueError,
     "ranks whole units"),
    (dict(criterion="fpgm", granularity="channel"), ValueError, "scores output units"),
    (dict(criterion="obs", granularity="filter"), ValueError, "layer-wise OBS cannot"),
    (dict(criterion="obs", rounding="half_even"), ValueError, "do not apply"),
    (dict(criterion="obs", granularity="channel", obs=ObsSettings(method="sparsegpt")),
     ValueError, "needs method='exact'"),
    (dict(criterion="obs", obs="exact"), TypeError, "obs must be a"),
])
def test_a_bad_spec_is_refused_on_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        PruneSpec(**kwargs)


@pytest.mark.parametrize("call, error, match", [
    (lambda: checks.check_sparsity(True), TypeError, "real number"),
    (lambda: checks.check_sparsity(float("nan")), ValueError, r"in \[0, 1\]"),
    (lambda: checks.check_probability(1.0, "p", high_open=True), ValueError,
     r"p must be in \[0, 1\)"),
    (lambda: checks.check_probability("x", "p"), TypeError, "p must be a probability"),
    (lambda: checks.check_real(float("nan"), "t"), ValueError, "t must be a number"),
    (lambda: checks.check_real(None, "t"), TypeError, "t must be a real number"),
    (lambda: checks.check_int(2.0, "rounds", 1), ValueError, "rounds must be an int >= 1"),
    (lambda: checks.check_int(0, "rounds", 1), ValueError, "rounds must be an int >= 1"),
    (lambda: checks.check_bool("yes", "flag"), TypeError, "flag must be a bool"),
    (lambda: checks.check_choice(3, "reduce", ("l1", "l2")), ValueError, "reduce must be one of"),
    (lambda: checks.check_mapping([], "grads", "name -> array"), TypeError,
     "grads must be a mapping name -> array"),
    (lambda: checks.check_finite(np.array([1.0, np.inf]), "weight 'w'"), ValueError,
     "weight 'w' has 1 NaN or infinite"),
    (lambda: checks.check_scores(np.array([True])), TypeError, "real-valued"),
    (lambda: checks.check_mask(np.array([0.5]), (1,)), ValueError, "only 0 and 1"),
    (lambda: checks.check_number("1", "lr"), TypeError, "lr must be a number"),
    (lambda: checks.check_number(0.0, "lr", strict=True), ValueError,
     "lr must be a finite number > 0"),
    (lambda: checks.check_number(float("inf"), "lr"), ValueError, "finite number >= 0"),
    (lambda: checks.check_number(1.0, "gamma", 0.0, True, 1.0, True), ValueError,
     r"gamma must be a finite number in \(0, 1\)"),
    (lambda: checks.check_batches(np.zeros((2, 3))), TypeError, "list of gradient arrays"),
    (lambda: checks.check_batches([]), ValueError, "grads_per_batch is empty"),
    (lambda: checks.check_names(None, "exclude"), TypeError, "exclude must be a parameter"),
    (lambda: checks.check_names(["a", 3], "exclude"), TypeError, "exclude must hold"),
    (lambda: checks.check_known(["x"], ["a", "b"], "exclude", "a prunable weight",
                                "the prunable weights"), ValueError,
     r"exclude names 'x', which is not a prunable weight; the prunable weights are \['a', 'b'\]"),
])
def test_the_shared_checks_refuse_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_shared_checks_return_what_the_code_needs():
    three = checks.check_int(np.int64(3), "n")
    assert three == 3 and type(three) is int
    assert checks.check_sparsity(1) == 1.0 and checks.check_real(np.float32(2.5), "t") == 2.5
    assert checks.check_names("a", "exclude") == ("a",)
    assert checks.check_mask(None, (2,)).tolist() == [1.0, 1.0]
    checks.check_finite(np.array([1, 2]), "ints are always finite")


@pytest.mark.parametrize("module", ["nnprune/checks.py", "nnprune/prune/granularity.py"])
def test_checks_and_granularity_import_numpy_and_the_core_only(module):
    """Both sit under the array core: they may not import nnprune.nn or autograd."""
    path = Path(nnprune.__file__).parent.parent / module
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("nnprune"):
            assert node.module in ("nnprune.foreign", "nnprune.checks"), node.module


@pytest.mark.parametrize("module", [checks, granularity_module, spec_module])
def test_the_docstring_examples_run(module):
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.attempted >= 1 and result.failed == 0
