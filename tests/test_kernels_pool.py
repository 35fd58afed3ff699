"""Pooling kernels: equal to their naive twins (ties included), the first-maximum tie rule by
hand, backward by central differences, and clear errors."""
import numpy as np
import pytest
from gradcheck import check_vjp
from hypothesis import given, settings
from strategies import pool_cases

from nnprune.functional import naive
from nnprune.functional.pool import (avg_pool2d_backward, avg_pool2d_forward,
                                     max_pool2d_backward, max_pool2d_forward)

pytestmark = pytest.mark.kernels

GEOMETRY = ("kernel_size", "stride", "padding")


def tied_input(case):
    """Small integers: most windows hold several equal maxima."""
    rng = np.random.default_rng(case["seed"])
    return rng.integers(-2, 3, (case["n"], case["c"], case["h"], case["w"])).astype(np.float64)


@given(case=pool_cases())
def test_max_pool_equals_its_naive_twin_with_ties(case):
    """Same maxima and the same entry (the first maximum, row-major) receives the gradient."""
    x, geometry = tied_input(case), [case[k] for k in GEOMETRY]
    out, cache = max_pool2d_forward(x, *geometry)
    ref, ref_cache = naive.max_pool2d_naive_forward(x, *geometry)
    np.testing.assert_array_equal(out, ref)
    dout = np.random.default_rng(case["seed"]).standard_normal(out.shape)
    np.testing.assert_allclose(max_pool2d_backward(dout, cache),
                               naive.max_pool2d_naive_backward(dout, ref_cache), rtol=1e-12)


@pytest.mark.parametrize("kernel_size", [(16, 16), (17, 16)])
def test_windows_of_more_than_256_entries_keep_the_first_maximum(kernel_size):
    """The stored offset of the first maximum needs more than a byte past 256 window entries
    (17·16 = 272): gradients still equal the naive twin's, ties included."""
    x = np.random.default_rng(0).integers(0, 3, (2, 1, 18, 17)).astype(np.float64)
    out, cache = max_pool2d_forward(x, kernel_size, 1)
    ref, ref_cache = naive.max_pool2d_naive_forward(x, kernel_size, 1)
    np.testing.assert_array_equal(out, ref)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    np.testing.assert_allclose(max_pool2d_backward(dout, cache),
                               naive.max_pool2d_naive_backward(dout, ref_cache), rtol=1e-12)


@given(case=pool_cases())
def test_avg_pool_equals_its_naive_twin(case):
    x = np.random.default_rng(case["seed"]).standard_normal(
        (case["n"], case["c"], case["h"], case["w"]))
    geometry = [case[k] for k in GEOMETRY]
    out, cache = avg_pool2d_forward(x, *geometry)
    ref, ref_cache = naive.avg_pool2d_naive_forward(x, *geometry)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(case["seed"]).standard_normal(out.shape)
    np.testing.assert_allclose(avg_pool2d_backward(dout, cache),
                               naive.avg_pool2d_naive_backward(dout, ref_cache),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=20)
@given(case=pool_cases())
def test_pool_backward_equals_central_differences(case):
    """Both pools' dx is the VJP of their forward (max-pool on distinct values, where it is
    differentiable)."""
    rng = np.random.default_rng(case["seed"])
    shape = (case["n"], case["c"], case["h"], case["w"])
    x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0  # distinct: no ties
    geometry = [case[k] for k in GEOMETRY]
    for forward, backward in ((max_pool2d_forward, max_pool2d_backward),
                              (avg_pool2d_forward, avg_pool2d_backward)):
        out, cache = forward(x, *geometry)
        dout = rng.standard_normal(out.shape)
        check_vjp(lambda a: forward(a, *geometry)[0], (x,), (backward(dout, cache),), dout,
                  name=forward.__name__, arg_names=("x",))


@pytest.mark.parametrize("window, expected", [
    ([[1.0, 1.0], [1.0, 1.0]], [[1, 0], [0, 0]]),    # all equal: the top-left entry
    ([[1.0, 3.0], [3.0, 2.0]], [[0, 1], [0, 0]]),    # first in row-major order, not column
    ([[0.0, -1.0], [5.0, 5.0]], [[0, 0], [1, 0]]),   # tie in the second row
    ([[-2.0, -2.0], [-3.0, -2.0]], [[1, 0], [0, 0]]),
])
def test_the_first_maximum_gets_the_whole_gradient(window, expected):
    x = np.array(window)[None, None]
    out, cache = max_pool2d_forward(x, 2)
    assert out.item() == x.max()
    np.testing.assert_array_equal(max_pool2d_backward(np.full((1, 1, 1, 1), 7.0), cache)[0, 0],
                                  7.0 * np.array(expected))


def test_overlapping_windows_add_up_at_a_shared_maximum():
    """Stride 1: the 9 sits in all four 2×2 windows, so it collects all four gradients;
    the tie between the two 5s of the last row goes to the left one."""
    x = np.array([[0.0, 1.0, 0.0], [2.0, 9.0, 3.0], [5.0, 5.0, 4.0]])[None, None]
    out, cache = max_pool2d_forward(x, 2, 1)
    np.testing.assert_array_equal(out[0, 0], [[9, 9], [9, 9]])
    dx = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]])
    x[0, 0, 1, 1] = -1  # each window now has its own maximum; the lower-left one is the first 5
    out, cache = max_pool2d_forward(x, 2, 1)
    dx = max_pool2d_backward(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [1, 0, 1], [1, 1, 0]])


def test_max_pool_padding_never_wins():
    """Padding is −inf: an all-negative input keeps its (negative) maxima, not 0."""
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out, cache = max_pool2d_forward(x, 3, 1, 1)
    assert (out < 0).all() and out[0, 0, 0, 0] == -1.0
    assert max_pool2d_backward(np.ones_like(out), cache)[0, 0, 0, 0] == 4.0  # in 4 windows


def test_avg_pool_counts_padded_zeros():
    out, _ = avg_pool2d_forward(np.ones((1, 1, 2, 2)), 2, 1, 1)
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5],
                                           [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
def test_float32_stays_float32(forward):
    out, _ = forward(np.ones((1, 1, 4, 4), np.float32), 2)
    assert out.dtype == np.float32


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
@pytest.mark.parametrize("x, kwargs, error, match", [
    (np.zeros((1, 4, 4)), {}, ValueError, "x must be 4-D"),
    (np.zeros((1, 1, 4, 0)), {}, ValueError, "no empty axis"),
    (np.zeros((1, 1, 4, 4), np.int32), {}, TypeError, "x must be a float32 or float64"),
    (np.zeros((1, 1, 4, 4)), {"kernel_size": 0}, ValueError, "kernel_size must be an int >= 1"),
    (np.zeros((1, 1, 4, 4)), {"stride": 0}, ValueError, "stride must be an int >= 1"),
    (np.zeros((1, 1, 4, 4)), {"stride": (2, -1)}, ValueError, "stride must be an int >= 1"),
    (np.zeros((1, 1, 4, 4)), {"padding": -1}, ValueError, "padding must be an int >= 0"),
    (np.zeros((1, 1, 4, 4)), {"padding": 2}, ValueError, "at most half the kernel"),
    (np.zeros((1, 1, 4, 4)), {"kernel_size": (5, 1)}, ValueError, "larger than the padded"),
])
def test_bad_arguments_are_refused(forward, x, kwargs, error, match):
    args = {"kernel_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        forward(x, **args)


@pytest.mark.parametrize("forward, backward", [(max_pool2d_forward, max_pool2d_backward),
                                               (avg_pool2d_forward, avg_pool2d_backward)])
def test_backward_refuses_a_dout_of_the_wrong_shape(forward, backward):
    _, cache = forward(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        backward(np.zeros((1, 1, 3, 2)), cache)
