"""The reverse pass as a whole: a value used several times gets the sum of its gradients
(x·x, a diamond, ``c += c + 1``), leaves accumulate across backward calls, no_grad records
nothing, and backward refuses what it cannot do."""
import numpy as np
import pytest
from gradcheck import check_tensor_grad
from hypothesis import given
from strategies import arrays, shapes

from nnprune import Tensor, no_grad
from nnprune.autograd import is_grad_enabled

pytestmark = pytest.mark.autograd


@given(x=arrays(shapes(max_dims=2, max_side=4)))
def test_a_value_multiplied_by_itself_gets_both_gradients(x):
    """d(x·x)/dx = 2x: both operands' contributions are summed."""
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    (t * t).sum().backward()
    np.testing.assert_allclose(t.grad, 2 * x, rtol=1e-12)


def test_diamond_graph_sums_both_paths():
    """a feeds b = 2a and c = a + 1, which meet in d = b·c: dd/da = 2c + b = 4a + 2."""
    a = Tensor([1.5, -2.0, 3.0], requires_grad=True, dtype=np.float64)
    b, c = a * 2, a + 1
    (b * c).sum().backward()
    np.testing.assert_allclose(a.grad, 4 * a.data + 2)


def test_c_plus_equals_c_plus_one_accumulates():
    """``c += c + 1`` rebinds c to c + (c + 1) = 2c + 1, so d(new c)/d(old c) = 2, and twice
    more makes 8."""
    x = Tensor(3.0, requires_grad=True, dtype=np.float64)
    c = x * 1.0
    c += c + 1
    assert c.item() == 7.0
    c += c + 1
    c += c + 1
    c.backward()
    assert x.grad == 8.0 and c.item() == 31.0


def test_a_micrograd_style_expression_matches_central_differences():
    """A tangle of reused values (sums, products, powers, relu, division) — every input's
    gradient equals the central difference."""
    def expression(a, b):
        c = a + b
        d = a * b + b ** 3
        c += c + 1
        c += 1 + c + (-a)
        d += d * 2 + (b + a).relu()
        d += 3 * d + (b - a).relu()
        e = c - d
        f = e ** 2
        g = f / 2.0
        g += 10.0 / f
        return g

    check_tensor_grad(expression, np.array([-4.0]), np.array([2.0]), dout=np.array([1.0]),
                      name="expression", arg_names=("a", "b"))


def test_leaf_gradients_accumulate_across_backward_calls_until_zeroed():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, [3 + 2, 3 + 4])
    w.zero_grad()
    assert w.grad is None


def test_backward_through_the_same_graph_twice_adds_the_gradient_again():
    w = Tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w * w).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_allclose(w.grad, 2 * 3 * w.data ** 2)


def test_constants_get_no_gradient():
    w = Tensor([1.0, 2.0], requires_grad=True)
    k = Tensor([5.0, 7.0])
    (w * k).sum().backward()
    assert k.grad is None
    np.testing.assert_array_equal(w.grad, [5.0, 7.0])


def test_no_grad_records_no_graph_and_restores_the_mode():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = w * 2 + 1
    assert not y.requires_grad and y._ctx is None
    z = w * 2
    assert z.requires_grad  # recording is back on after the block
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_blocks_nest():
    """Leaving an inner block keeps recording off inside the outer one; leaving the outer
    one turns it back on."""
    w = Tensor([1.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        with no_grad():
            assert not (w * 2).requires_grad
        assert not is_grad_enabled() and not (w * 2).requires_grad
    assert is_grad_enabled() and (w * 2).requires_grad


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ValueError):
        with no_grad():
            raise ValueError("inside")
    assert (Tensor([1.0], requires_grad=True) * 2).requires_grad


@pytest.mark.parametrize("data", [
    [1.0, 2.0], [[1, 2], [3, 4]], 3, True, np.arange(4, dtype=np.int64),
    np.ones(3, dtype=np.uint8), np.ones(2, dtype=np.float16),
])
def test_float32_is_the_default_dtype(data):
    """Python numbers, lists, ints, bools and non-float32/64 arrays become float32."""
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


def test_float64_on_request_and_kept_from_float64_arrays():
    """dtype=np.float64 (or "float64") gives float64; a float64 ndarray keeps its dtype, as
    in PyTorch's torch.tensor; a constant operand takes the dtype of the tensor it meets."""
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert Tensor([1.0], dtype="float64").dtype == np.float64
    assert Tensor(np.ones(2)).dtype == np.float64
    assert Tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    x32 = Tensor([1.0, 2.0], requires_grad=True)
    assert (x32 * 0.1 + np.ones(2)).dtype == np.float32  # constants follow the tensor
    (x32 * x32).sum().backward()
    assert x32.grad.dtype == np.float32
    x64 = Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    (x64 * 0.1).sum().backward()
    assert x64.grad.dtype == np.float64


def test_a_new_tensor_copies_the_caller_array():
    """Changing the array a Tensor was built from does not change the Tensor."""
    a = np.ones(3, dtype=np.float32)
    t = Tensor(a)
    a[0] = 5
    assert t.data[0] == 1


def test_detach_cuts_the_graph():
    w = Tensor([2.0], requires_grad=True)
    (w * w.detach()).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0])  # only the non-detached factor


@pytest.mark.parametrize("call, error, match", [
    (lambda: Tensor([1.0, 2.0]).sum().backward(), RuntimeError, "does not require grad"),
    (lambda: (Tensor([1.0, 2.0], requires_grad=True) * 2).backward(), ValueError,
     "grad must be given for a non-scalar"),
    (lambda: (Tensor([1.0, 2.0], requires_grad=True) * 2).backward(np.ones(3)), ValueError,
     r"grad must have shape \(2,\)"),
    (lambda: Tensor([1.0], requires_grad=1), TypeError, "requires_grad must be a bool"),
    (lambda: Tensor(["a"]), TypeError, "numeric"),
    (lambda: Tensor([1.0], dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: Tensor([1.0, 2.0]).item(), ValueError, "one element"),
    (lambda: (Tensor([1.0, 2.0], requires_grad=True) * 2).backward("ab"), TypeError,
     r"grad must be a numeric array of shape \(2,\)"),
    (lambda: Tensor([1.0], dtype="float33"), TypeError, "dtype must be float32 or float64"),
    (lambda: Tensor([[1.0], [1.0, 2.0]]), ValueError, "data must be rectangular"),
    (lambda: Tensor([1j]), TypeError, "numeric"),
    (lambda: Tensor([1.0]) * None, TypeError, "numeric"),
])
def test_bad_use_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
