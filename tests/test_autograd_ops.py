"""Every autograd op, driven by one table: its forward equals the NumPy expression and its
backward equals central differences (float64), on shapes drawn by hypothesis — broadcasting
shapes for the binary ops."""
import numpy as np
import pytest
from gradcheck import check_tensor_grad, check_vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (arrays, broadcast_pair, getitem_case, matmul_pair, max_case, one_array,
                        reduction_case, reshape_case, shapes, transpose_case)

from nnprune import Tensor
from nnprune.autograd import unbroadcast

pytestmark = pytest.mark.autograd


def away_from_zero(a: np.ndarray) -> np.ndarray:
    """Push values out of (−0.5, 0.5): safe denominators, no ReLU kink under the step h."""
    return np.where(a >= 0, a + 0.5, a - 0.5)


def positive(a: np.ndarray) -> np.ndarray:
    return np.abs(a) + 0.5


# name -> (strategy of (inputs..., options...), f(tensors, options), numpy reference)
OPS = {
    "add": (broadcast_pair(), lambda a, b: a + b, np.add),
    "sub": (broadcast_pair(), lambda a, b: a - b, np.subtract),
    "mul": (broadcast_pair(), lambda a, b: a * b, np.multiply),
    "div": (broadcast_pair().map(lambda p: (p[0], away_from_zero(p[1]))),
            lambda a, b: a / b, np.divide),
    "neg": (one_array(), lambda a: -a, np.negative),
    "pow": (st.tuples(arrays(shapes(max_dims=3, max_side=3)).map(positive),
                      st.sampled_from([2, 3, 0.5, -1.5, 0])),
            lambda a, p: a ** p, np.power),
    "matmul": (matmul_pair(), lambda a, b: a @ b, np.matmul),
    "sum": (reduction_case(), lambda a, ax, k: a.sum(axis=ax, keepdims=k),
            lambda a, ax, k: np.sum(a, axis=ax, keepdims=k)),
    "mean": (reduction_case(), lambda a, ax, k: a.mean(axis=ax, keepdims=k),
             lambda a, ax, k: np.mean(a, axis=ax, keepdims=k)),
    "max": (max_case(), lambda a, ax, k: a.max(axis=ax, keepdims=k),
            lambda a, ax, k: np.max(a, axis=ax, keepdims=k)),
    "reshape": (reshape_case(), lambda a, s: a.reshape(s), np.reshape),
    "transpose": (transpose_case(), lambda a, axes: a.transpose(*axes), np.transpose),
    "getitem": (getitem_case(), lambda a, i: a[i], lambda a, i: a[i]),
    "exp": (one_array(), lambda a: a.exp(), np.exp),
    "log": (one_array().map(lambda t: (positive(t[0]),)), lambda a: a.log(), np.log),
    "relu": (one_array().map(lambda t: (away_from_zero(t[0]),)), lambda a: a.relu(),
             lambda a: np.maximum(a, 0)),
    "tanh": (one_array(), lambda a: a.tanh(), np.tanh),
    "sigmoid": (one_array(), lambda a: a.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
}
N_ARRAYS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "matmul": 2}  # the rest: 1 array + options


@pytest.mark.parametrize("name", list(OPS))
@settings(max_examples=30)
@given(data=st.data())
def test_op_forward_matches_numpy_and_backward_matches_central_differences(name, data):
    """out equals the NumPy expression; every input's grad is the VJP of out with a random
    dout, summed back over broadcast axes."""
    strategy, op, reference = OPS[name]
    drawn = data.draw(strategy)
    k = N_ARRAYS.get(name, 1)
    inputs, options = drawn[:k], drawn[k:]
    out = op(*(Tensor(a, dtype=np.float64) for a in inputs), *options)
    np.testing.assert_allclose(out.data, reference(*inputs, *options), rtol=1e-12, atol=1e-12)
    check_tensor_grad(lambda *t: op(*t, *options), *inputs, name=name, rtol=1e-5, atol=1e-7)


def test_the_dot_product_of_two_vectors_has_both_gradients():
    """d(a·b)/da = b and d(a·b)/db = a."""
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a @ b).backward()
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])


def test_max_sends_the_gradient_to_the_first_of_tied_maxima():
    a = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    a.max(axis=1).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0, 1, 0], [1, 0, 0]])
    b = Tensor([5.0, 5.0], requires_grad=True)
    b.max().backward()
    np.testing.assert_array_equal(b.grad, [1, 0])


def test_max_over_several_axes_sends_ties_to_the_first_in_c_order():
    """Reducing axes (0, 2) of a (2, 2, 2) block of equal values: only entry [0, j, 0] of each
    j (the lowest flat index of its block) gets the gradient."""
    a = Tensor(np.ones((2, 2, 2)), requires_grad=True)
    out = a.max(axis=(0, 2), keepdims=True)
    assert out.shape == (1, 2, 1)
    (out * Tensor([[[2.0], [3.0]]])).sum().backward()
    expected = np.zeros((2, 2, 2))
    expected[0, :, 0] = [2.0, 3.0]
    np.testing.assert_array_equal(a.grad, expected)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=10)
@given(data=st.data())
def test_every_op_keeps_the_dtype_of_its_inputs(name, dtype, data):
    """float32 in, float32 out and float32 gradients; float64 likewise (Python-number options
    such as the exponent never promote), so float64 checks stay float64 end to end."""
    strategy, op, _ = OPS[name]
    drawn = data.draw(strategy)
    k = N_ARRAYS.get(name, 1)
    inputs = [Tensor(a, requires_grad=True, dtype=dtype) for a in drawn[:k]]
    out = op(*inputs, *drawn[k:])
    assert out.dtype == dtype
    out.backward(np.ones(out.shape))
    assert all(t.grad.dtype == dtype and t.grad.shape == t.shape for t in inputs)


def test_sigmoid_is_finite_at_extreme_inputs():
    a = Tensor([-1e4, 0.0, 1e4], requires_grad=True, dtype=np.float64)
    out = a.sigmoid()
    np.testing.assert_array_equal(out.data, [0.0, 0.5, 1.0])
    out.sum().backward()
    assert np.isfinite(a.grad).all()


@pytest.mark.parametrize("call, error, match", [
    (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3))), ValueError, "matmul shapes"),
    (lambda: Tensor(np.ones(())) @ Tensor(np.ones(3)), ValueError, "scalar"),
    (lambda: Tensor(np.ones((2, 3))).reshape(4), ValueError, "cannot reshape"),
    (lambda: Tensor(np.ones((2, 3))).transpose(0, 0), ValueError, "permutation"),
    (lambda: Tensor(np.ones(3)) ** "2", TypeError, "exponent must be a real number"),
    (lambda: Tensor(np.ones(3)) ** Tensor(2.0), TypeError, "exponent must be a real number"),
    (lambda: Tensor(np.ones((2, 3))).sum(axis=2), ValueError, "out of range"),
    (lambda: Tensor(np.ones((0, 3))).mean(axis=0), ValueError, "empty"),
    (lambda: Tensor(np.ones(0)).max(), ValueError, "empty"),
    (lambda: Tensor(np.ones(2)) + Tensor(np.ones(3)), ValueError,
     r"add: shapes \(2,\) and \(3,\) do not broadcast"),
    (lambda: Tensor(np.ones((2, 3))) - np.ones(2), ValueError, "sub: shapes"),
    (lambda: Tensor(np.ones((2, 3))) * np.ones((3, 3)), ValueError, "mul: shapes"),
    (lambda: np.ones((4, 1, 2)) / Tensor(np.ones((3, 3))), ValueError, "div: shapes"),
    (lambda: Tensor(np.ones((2, 3))).max(axis=5), ValueError, "axis 5 is out of range"),
    (lambda: Tensor(np.ones((2, 3))).max(axis=(0, -2)), ValueError, "same axis twice"),
    (lambda: Tensor(np.ones((2, 3))).sum(axis=(1, 1)), ValueError, "same axis twice"),
    (lambda: Tensor(np.ones((2, 3))).mean(axis="rows"), TypeError, "axis must be None"),
    (lambda: Tensor(np.ones((2, 3))).sum(axis=1.0), TypeError, "axis must be None"),
    (lambda: Tensor(np.ones((2, 3))).reshape("a"), ValueError, "cannot reshape"),
    (lambda: Tensor(np.ones((2, 3))).flatten(2), ValueError, "start_dim"),
    (lambda: unbroadcast(np.ones((2, 3)), (4,)), ValueError, r"shape \(4,\) does not"),
    (lambda: unbroadcast(np.ones(3), (2, 3)), ValueError, r"shape \(2, 3\) does not"),
])
def test_ops_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_gradcheck_names_the_function_argument_index_and_values():
    """The finite-difference check fails on a wrong gradient, at the worst entry, and says
    where and by how much."""
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    dout = np.ones_like(x)
    wrong = 2 * x
    wrong[1, 0] += 0.5  # d/dx Σ x² = 2x, except one entry
    with pytest.raises(AssertionError, match=r"square: d/d\(x\)\[1, 0\] = 6\.5 received, "
                                             r"(6\.0000|5\.9999)\d* expected"):
        check_vjp(np.square, (x,), (wrong,), dout, name="square", arg_names=("x",))
    check_vjp(np.square, (x,), (2 * x,), dout, name="square", arg_names=("x",))
