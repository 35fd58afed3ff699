"""Scores: formulas, dtypes, SNIP normalisation, accumulation over batches, seeded random
scores, the dict helper and its errors."""
import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnprune.prune import (CRITERIA, accumulate_taylor, compute_scores, gradient, magnitude,
                           random_scores, snip, taylor)
from nnprune.prune import scores as scores_module
from strategies import arrays, seeds, shapes, weights_and_grads

pytestmark = pytest.mark.scores


@given(shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s))))
def test_score_formulas(w_and_g):
    """magnitude p=1 is |w|, p=2 is w²; gradient is |g|; taylor is |w·g|, squared (w·g)²."""
    w, g = w_and_g
    assert np.array_equal(magnitude(w), np.abs(w))
    assert np.array_equal(magnitude(w, p=2), w * w)
    assert np.array_equal(gradient(g), np.abs(g))
    assert np.array_equal(taylor(w, g), np.abs(w * g))
    assert np.array_equal(taylor(w, g, squared=True), (w * g) ** 2)


@given(hnp.arrays(np.float32, shapes(), elements=st.floats(-3, 3, width=32)))
def test_float32_weights_give_float32_scores(w):
    """Scores keep the weight's float dtype (no silent float64 copy of a big float32 model)."""
    assert magnitude(w).dtype == magnitude(w, 2).dtype == taylor(w, w).dtype == np.float32
    assert magnitude(np.arange(3)).dtype == np.float64  # integers become float64


@given(weights_and_grads())
def test_snip_sums_to_one_over_all_tensors(w_and_g):
    """Over a dict, SNIP scores sum to 1 across all tensors and are |w·g| / Σ|w·g| (one
    normaliser for every tensor); on one array they sum to 1 too."""
    w, g = w_and_g
    scores = snip(w, g)
    total = sum(np.abs(w[k] * g[k]).sum() for k in w)
    assert sum(s.sum() for s in scores.values()) == pytest.approx(1.0)
    for name in w:
        assert np.allclose(scores[name], np.abs(w[name] * g[name]) / total, rtol=1e-12, atol=0)
    first = next(iter(w))
    assert snip(w[first], g[first]).sum() == pytest.approx(1.0)
    assert all(np.array_equal(scores[k], v)
               for k, v in compute_scores("snip", w, g).items())


@given(shapes().flatmap(lambda s: st.tuples(arrays(s), st.lists(arrays(s), min_size=1,
                                                                 max_size=4))),
       st.booleans())
def test_accumulate_taylor_averages_per_batch_scores(w_and_grads, squared):
    """accumulate_taylor = (1/B) Σ_b score(w, g_b), and is ≥ the score of the mean gradient
    (triangle inequality for |·|, Jensen for (·)²); with one batch they coincide."""
    w, grads = w_and_grads
    got = accumulate_taylor(w, grads, squared=squared)
    per_batch = [taylor(w, g, squared=squared) for g in grads]
    assert np.allclose(got, np.mean(per_batch, axis=0), rtol=1e-12, atol=1e-300)
    mean_score = taylor(w, np.mean(grads, axis=0), squared=squared)
    assert np.all(got >= mean_score - 1e-12 * (1 + np.abs(mean_score)))
    assert np.array_equal(accumulate_taylor(w, grads[:1], squared), per_batch[0])


@given(shapes(), seeds, seeds)
def test_random_scores_are_seeded(shape, seed, other):
    """The same seed gives the same bits; another seed other scores; values in [0, 1)."""
    a, b = random_scores(shape, seed), random_scores(np.zeros(shape), seed)
    assert np.array_equal(a, b) and a.shape == shape and a.dtype == np.float64
    assert np.all((a >= 0) & (a < 1))
    if seed != other and a.size >= 4:
        assert not np.array_equal(a, random_scores(shape, other))


def test_random_compute_scores_per_name_streams():
    """With an int seed a tensor's random scores depend on (seed, its name) only: adding
    another tensor does not change them; names get different streams; a Generator is used as
    given, in mapping order."""
    w = {"a": np.ones((3, 4)), "b": np.ones(5)}
    both = compute_scores("random", w, seed=7)
    alone = compute_scores("random", {"b": w["b"]}, seed=7)
    assert np.array_equal(both["b"], alone["b"])
    assert not np.array_equal(both["a"][0, :4], random_scores(4, 7))  # not a shared stream
    assert not np.array_equal(both["a"], compute_scores("random", w, seed=8)["a"])
    rng = np.random.default_rng(3)
    drawn = compute_scores("random", w, seed=np.random.default_rng(3))
    assert np.array_equal(drawn["a"], rng.random((3, 4))) and np.array_equal(
        drawn["b"], rng.random(5))


@pytest.mark.parametrize("criterion", [c for c in CRITERIA if c != "obs"])
def test_compute_scores_matches_the_single_functions(criterion):
    """Each criterion name gives the function it names, for every tensor (obs is no score:
    see test_layerwise)."""
    from nnprune.prune.hessian import obd_saliency

    rng = np.random.default_rng(0)
    w = {"conv": rng.standard_normal((2, 3, 2, 2)), "fc": rng.standard_normal((4, 5))}
    g = {k: rng.standard_normal(v.shape) for k, v in w.items()}
    hd = {k: rng.random(v.shape) for k, v in w.items()}
    got = compute_scores(criterion, w, g, seed=0, hessian_diag=hd)
    expected = {"magnitude": lambda k: magnitude(w[k]), "gradient": lambda k: gradient(g[k]),
                "taylor": lambda k: taylor(w[k], g[k]),
                "taylor2": lambda k: taylor(w[k], g[k], squared=True),
                "snip": lambda k: snip(w, g)[k],
                "random": lambda k: compute_scores("random", {k: w[k]}, seed=0)[k],
                "obd": lambda k: obd_saliency(w[k], hd[k])}[criterion]
    assert list(got) == list(w)
    for name in w:
        assert np.array_equal(got[name], expected(name))


def test_docstring_examples():
    """The examples in the module docstring run as written."""
    result = doctest.testmod(scores_module, extraglobs={"np": np})
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: compute_scores("l0", {"a": np.ones(2)}), ValueError, "unknown criterion 'l0'"),
    (lambda: compute_scores(None, {"a": np.ones(2)}), ValueError, "unknown criterion"),
    (lambda: compute_scores("magnitude", [np.ones(2)]), TypeError, "weights must be a mapping"),
    (lambda: compute_scores("taylor", {"a": np.ones(2)}), ValueError, "'taylor' needs grads"),
    (lambda: compute_scores("snip", {"a": np.ones(2)}, [np.ones(2)]), TypeError, "grads must"),
    (lambda: compute_scores("gradient", {"a": np.ones(2)}, {"b": np.ones(2)}), ValueError,
     r"grads is missing \['a'\]"),
    (lambda: compute_scores("taylor2", {"a": np.ones(2)}, {"a": np.ones(3)}), ValueError,
     r"weights\['a'\] and grads\['a'\] must have the same shape"),
    (lambda: compute_scores("gradient", {"a": np.ones(2)}, {"a": np.ones(3)}), ValueError,
     "same shape"),
    (lambda: compute_scores("random", {"a": np.ones(2)}), ValueError, "needs a seed"),
    (lambda: compute_scores("random", {"a": np.ones(2)}, seed=-1), TypeError, "seed"),
    (lambda: compute_scores("magnitude", {"a": np.array([np.nan])}), ValueError, "finite"),
    (lambda: compute_scores("snip", {"a": np.ones(2)}, {"a": np.zeros(2)}), ValueError,
     "SNIP is undefined"),
    (lambda: magnitude(np.ones(2), p=3), ValueError, "p must be 1"),
    (lambda: magnitude(np.ones(2), p=True), ValueError, "p must be 1"),
    (lambda: magnitude(np.array([np.inf])), ValueError, "w must be finite"),
    (lambda: magnitude(np.array(["x"])), TypeError, "w must be a real-valued"),
    (lambda: gradient(np.array([np.nan])), ValueError, "g must be finite"),
    (lambda: taylor(np.ones(2), np.ones(3)), ValueError, "same shape"),
    (lambda: snip(np.ones(2), {"a": np.ones(2)}), TypeError, "two arrays or two mappings"),
    (lambda: snip({"a": np.ones(2)}, {"b": np.ones(2)}), ValueError, "missing 'a'"),
    (lambda: random_scores((2, 3), seed=1.5), TypeError, "seed"),
    (lambda: random_scores((2, 3), seed=True), TypeError, "seed"),
    (lambda: random_scores((2, -3), seed=0), TypeError, "shape_or_array"),
    (lambda: random_scores("23", seed=0), TypeError, "shape_or_array"),
    (lambda: accumulate_taylor(np.ones(2), []), ValueError, "empty"),
    (lambda: accumulate_taylor(np.ones(2), np.ones((3, 2))), TypeError, "list"),
    (lambda: accumulate_taylor(np.ones(2), [np.ones(2), np.ones(3)]), ValueError,
     r"grads_per_batch\[1\]"),
])
def test_bad_input_is_rejected(call, error, match):
    """Unknown criteria, missing grads or names, shape mismatches, NaN/inf, bad seeds and
    shapes, all-zero SNIP products: each a clear error naming the argument."""
    with pytest.raises(error, match=match):
        call()
