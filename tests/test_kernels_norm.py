"""Batch normalisation kernel: equals its per-channel loop, normalises each channel, updates
the running buffers as PyTorch does, backward by central differences, clear errors."""
import numpy as np
import pytest
from gradcheck import check_vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import batch_norm_shapes

from nnprune.functional import naive
from nnprune.functional.norm import batch_norm_backward, batch_norm_forward, channel_sums

pytestmark = pytest.mark.kernels

def problem(shape, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = 3 * rng.standard_normal(shape) + rng.standard_normal(c).reshape((1, c) + (1,) * (len(shape) - 2))
    return (x, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c),
            rng.uniform(0.5, 2.0, c))


@given(shape=batch_norm_shapes, seed=st.integers(0, 2**16), transposed=st.booleans())
def test_channel_sums_equal_sums_over_every_axis_but_the_channels(shape, seed, transposed):
    """Σ a and Σ a·b per channel, for contiguous and for transposed (strided) inputs."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    if transposed:  # the same values, laid out in memory with the batch axis last
        a, b = (np.ascontiguousarray(v.T).T for v in (a, b))
    axes = (0,) if a.ndim == 2 else (0, 2, 3)
    np.testing.assert_allclose(channel_sums(a), a.sum(axis=axes), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(channel_sums(a, b), (a * b).sum(axis=axes), rtol=1e-12,
                               atol=1e-12)
    assert channel_sums(a.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("a, b, message", [
    (np.ones(3), None, r"a must be an \(N, C\) or \(N, C, H, W\) ndarray, got \(3,\)"),
    (np.ones((2, 3, 4)), None, r"got \(2, 3, 4\)"),
    ([[1.0, 2.0]], None, "got list"),
    (np.ones((2, 3)), np.ones((3, 2)), r"b must have a's shape \(2, 3\), got \(3, 2\)"),
])
def test_channel_sums_rejects_what_it_cannot_sum(a, b, message):
    with pytest.raises(ValueError, match=message):
        channel_sums(a, b)


@given(shape=batch_norm_shapes, seed=st.integers(0, 2**16), training=st.booleans(),
       momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_batch_norm_equals_its_per_channel_loop(shape, seed, training, momentum):
    """Same output and same running buffers afterwards, in training and in evaluation."""
    x, gamma, beta, mean, var = problem(shape, seed)
    fast_buffers, slow_buffers = (mean.copy(), var.copy()), (mean.copy(), var.copy())
    out, _ = batch_norm_forward(x, gamma, beta, *fast_buffers, training, momentum)
    ref = naive.batch_norm_naive_forward(x, gamma, beta, *slow_buffers, training, momentum)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    for fast, slow in zip(fast_buffers, slow_buffers):
        np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)


@given(shape=batch_norm_shapes, seed=st.integers(0, 2**16))
def test_training_output_has_zero_mean_and_unit_variance_per_channel(shape, seed):
    """Without γ and β every channel of the output has mean 0 and (biased) variance
    σ²/(σ² + eps) ≈ 1."""
    x = problem(shape, seed)[0]
    out, _ = batch_norm_forward(x, None, None, None, None, training=True, eps=1e-5)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    var = x.var(axis=axes)
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=axes), var / (var + 1e-5), rtol=1e-9)


def test_running_var_uses_the_unbiased_variance():
    x = np.array([[1.0], [2.0], [6.0]])
    mean, var = np.zeros(1), np.ones(1)
    batch_norm_forward(x, None, None, mean, var, training=True, momentum=0.25)
    assert mean[0] == pytest.approx(0.75 * 0 + 0.25 * 3.0)
    assert var[0] == pytest.approx(0.75 * 1 + 0.25 * np.var(x, ddof=1))


def test_evaluation_uses_the_running_statistics_and_leaves_them_alone():
    x = np.array([[1.0, 10.0], [3.0, 20.0]])
    mean, var = np.array([1.0, 0.0]), np.array([4.0, 1.0])
    out, _ = batch_norm_forward(x, np.array([2.0, 1.0]), np.array([0.0, 1.0]), mean, var,
                                training=False, eps=0.5)
    np.testing.assert_allclose(out, [[0.0, 10 / np.sqrt(1.5) + 1], [4 / np.sqrt(4.5),
                                                                     20 / np.sqrt(1.5) + 1]])
    np.testing.assert_array_equal(mean, [1.0, 0.0])
    np.testing.assert_array_equal(var, [4.0, 1.0])


@settings(max_examples=25)
@given(shape=batch_norm_shapes, seed=st.integers(0, 2**16), training=st.booleans())
def test_batch_norm_backward_equals_central_differences(shape, seed, training):
    """dx, dγ, dβ are the VJP of the forward; in training the batch statistics depend on x,
    in evaluation they are constants (the buffers are copied so every call sees the same)."""
    x, gamma, beta, mean, var = problem(shape, seed)

    def batch_norm(x, gamma, beta):
        return batch_norm_forward(x, gamma, beta, mean.copy(), var.copy(), training)[0]

    out, cache = batch_norm_forward(x, gamma, beta, mean.copy(), var.copy(), training)
    dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    check_vjp(batch_norm, (x, gamma, beta), batch_norm_backward(dout, cache), dout,
              arg_names=("x", "weight", "bias"), rtol=1e-4, atol=1e-6)


def test_no_weight_or_bias_gives_no_gradient_for_them():
    x = np.random.default_rng(0).standard_normal((4, 3))
    out, cache = batch_norm_forward(x, None, None, None, None, training=True)
    dx, dgamma, dbeta = batch_norm_backward(np.ones_like(out), cache)
    assert dgamma is None and dbeta is None
    np.testing.assert_allclose(dx, 0, atol=1e-12)  # a constant dout shifts nothing


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)])
def test_one_value_per_channel_in_training_is_refused(shape):
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_forward(np.ones(shape), None, None, np.zeros(3), np.ones(3), training=True)


def test_one_sample_with_several_pixels_is_fine_in_training():
    out, _ = batch_norm_forward(np.arange(4.0).reshape(1, 1, 2, 2), None, None, None, None, True)
    assert abs(out.mean()) < 1e-12


C3 = {"gamma": None, "beta": None, "running_mean": np.zeros(3), "running_var": np.ones(3)}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"x": np.ones((2, 3, 4))}, ValueError, r"x must be \(N, C\) or \(N, C, H, W\)"),
    ({"x": np.ones((2, 3), np.int64)}, TypeError, "x must be a float32 or float64"),
    ({"gamma": np.ones(2)}, ValueError, r"weight must have shape \(3,\)"),
    ({"beta": np.ones((3, 1))}, ValueError, r"bias must have shape \(3,\)"),
    ({"running_mean": np.zeros(4)}, ValueError, r"running_mean must have shape \(3,\)"),
    ({"running_var": [1.0, 1.0, 1.0]}, TypeError, "running_var must be a float32 or float64"),
    ({"running_var": None}, ValueError, "must be given together"),
    ({"momentum": 1.5}, ValueError, r"momentum must be a finite number in \[0, 1\]"),
    ({"eps": 0.0}, ValueError, "eps must be a finite number > 0"),
    ({"training": 1}, TypeError, "training must be a bool"),
    ({"training": False, "running_mean": None, "running_var": None}, ValueError,
     "evaluation needs running_mean and running_var"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    args = {"x": np.ones((2, 3)), **C3, "training": True, **kwargs}
    with pytest.raises(error, match=match):
        batch_norm_forward(**args)


def test_backward_refuses_a_dout_of_the_wrong_shape():
    _, cache = batch_norm_forward(np.arange(6.0).reshape(2, 3), None, None, None, None, True)
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        batch_norm_backward(np.ones((3, 2)), cache)
