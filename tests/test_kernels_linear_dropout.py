"""Linear and dropout kernels: values by their formulas, backward by central differences,
dropout's seeded masks and scaling, clear errors."""
import numpy as np
import pytest
from gradcheck import check_vjp
from hypothesis import given
from hypothesis import strategies as st

from nnprune.functional.norm import dropout_backward, dropout_forward
from nnprune.functional.dense import linear_backward, linear_forward

pytestmark = pytest.mark.kernels


@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=3), n_in=st.integers(1, 4),
       n_out=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_is_x_times_w_transposed_plus_b_with_its_vjp(lead, n_in, n_out, bias, seed):
    """out[..., o] = Σ_i x[..., i] W[o, i] + b[o] for any leading axes; the backward is the
    VJP of that formula."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((*lead, n_in)), rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out) if bias else None
    out, cache = linear_forward(x, w, b)
    expected = np.einsum("...i,oi->...o", x, w) + (0 if b is None else b)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    grads = linear_backward(dout, cache)
    assert (grads[2] is None) == (b is None)
    args = (x, w) if b is None else (x, w, b)
    check_vjp(lambda *a: linear_forward(*a)[0], args, grads[:len(args)], dout, name="linear",
              arg_names=("x", "weight", "bias"))


@pytest.mark.parametrize("x, w, b, error, match", [
    (np.zeros((2, 3)), np.zeros((4, 2)), None, ValueError, "in_features = 2"),
    (np.zeros((2, 3)), np.zeros((4, 3, 1)), None, ValueError, "weight must be 2-D"),
    (np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3), ValueError, r"bias must have shape \(4,\)"),
    (np.zeros((2, 3), int), np.zeros((4, 3)), None, TypeError, "x must be a float32"),
    (np.zeros((2, 3)), np.zeros((4, 3), bool), None, TypeError, "weight must be a float32"),
])
def test_linear_refuses_bad_input(x, w, b, error, match):
    with pytest.raises(error, match=match):
        linear_forward(x, w, b)


def test_linear_backward_refuses_a_dout_of_the_wrong_shape():
    _, cache = linear_forward(np.zeros((2, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        linear_backward(np.zeros((2, 3)), cache)


@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_dropout_keeps_or_zeroes_each_entry_and_scales_the_kept_ones(p, seed):
    """Each output is 0 or x / (1 − p); the same seed gives the same mask; the backward uses
    that mask."""
    x = np.random.default_rng(seed).uniform(1, 2, (4, 50))
    out, cache = dropout_forward(x, p, True, np.random.default_rng(seed))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
    again, _ = dropout_forward(x, p, True, np.random.default_rng(seed))
    np.testing.assert_array_equal(out, again)
    dout = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(dropout_backward(dout, cache), np.where(kept, dout / (1 - p), 0))


def test_dropout_keeps_the_expected_value():
    """E[out] = x: over 200,000 entries the mean of dropout(1) is 1 within 1 %."""
    out, _ = dropout_forward(np.ones(200_000, np.float32), 0.3, True, np.random.default_rng(0))
    assert out.dtype == np.float32
    assert abs(out.mean() - 1.0) < 0.01
    assert abs((out == 0).mean() - 0.3) < 0.01


@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True)])
def test_dropout_is_the_identity_in_evaluation_or_for_p_zero(p, training):
    x = np.arange(6.0)
    out, cache = dropout_forward(x, p, training, None)
    assert out is x and cache is None
    np.testing.assert_array_equal(dropout_backward(np.ones(6), cache), np.ones(6))


@pytest.mark.parametrize("p, training, rng, error, match", [
    (1.0, True, np.random.default_rng(0), ValueError, r"p must be in \[0, 1\)"),
    (-0.1, True, np.random.default_rng(0), ValueError, r"p must be in \[0, 1\)"),
    (True, True, np.random.default_rng(0), TypeError, "p must be a probability"),
    ("0.5", True, np.random.default_rng(0), TypeError, "p must be a probability"),
    (0.5, True, None, TypeError, "needs rng, a np.random.Generator"),
    (0.5, True, 0, TypeError, "needs rng, a np.random.Generator"),
    (0.5, "yes", np.random.default_rng(0), TypeError, "training must be a bool"),
])
def test_dropout_refuses_bad_arguments(p, training, rng, error, match):
    with pytest.raises(error, match=match):
        dropout_forward(np.ones(3), p, training, rng)


def test_dropout_refuses_integer_input():
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        dropout_forward(np.ones(3, int), 0.5, True, np.random.default_rng(0))
