"""The Tensor-level functional API: gradients through autograd equal central differences for
every function, options reach the kernels, dtypes follow the documented rule, and bad input
gets a clear error at this level too."""
import numpy as np
import pytest
from gradcheck import check_tensor_grad

from nnprune import Tensor, no_grad
from nnprune import functional as F

pytestmark = pytest.mark.kernels

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape)


def distinct(*shape):
    """Distinct values (no max-pool ties, no ReLU kinks at 0)."""
    return (RNG.permutation(np.prod(shape)).reshape(shape) - np.prod(shape) / 2 + 0.5) / 5


TARGET = np.array([2, 0, 1])
CASES = {
    "linear": (lambda x, w, b: F.linear(x, w, b), [randn(3, 4), randn(2, 4), randn(2)]),
    "linear, no bias": (lambda x, w: F.linear(x, w), [randn(2, 3, 4), randn(2, 4)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
               [randn(2, 2, 5, 4), randn(3, 2, 2, 3), randn(3)]),
    "conv2d, no bias": (lambda x, w: F.conv2d(x, w, padding=1), [randn(1, 2, 3, 4),
                                                                 randn(2, 2, 3, 1)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, (2, 3), stride=(1, 2), padding=1),
                   [distinct(2, 2, 4, 5)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, padding=1), [randn(1, 2, 4, 3)]),
    "batch_norm, training": (
        lambda x, g, b: F.batch_norm(x, np.zeros(2), np.ones(2), g, b, training=True),
        [randn(3, 2, 2, 2), randn(2), randn(2)]),
    "batch_norm, evaluation": (
        lambda x, g, b: F.batch_norm(x, np.full(2, 0.5), np.full(2, 2.0), g, b),
        [randn(3, 2), randn(2), randn(2)]),
    "batch_norm, bias only": (
        lambda x, b: F.batch_norm(x, None, None, bias=b, training=True), [randn(4, 3), randn(3)]),
    "batch_norm, weight only": (
        lambda x, g: F.batch_norm(x, None, None, weight=g, training=True),
        [randn(4, 3), randn(3)]),
    "dropout": (lambda x: F.dropout(x, 0.4, True, np.random.default_rng(5)), [randn(3, 4)]),
    "relu": (F.relu, [distinct(3, 4)]),
    "tanh": (F.tanh, [randn(3, 4)]),
    "sigmoid": (F.sigmoid, [randn(3, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, axis=0), [randn(3, 4)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, TARGET), [randn(3, 4)]),
    "cross_entropy, sum": (lambda z: F.cross_entropy(z, TARGET, "sum"), [randn(3, 4)]),
    "cross_entropy, none": (lambda z: F.cross_entropy(z, TARGET, "none"), [randn(3, 4)]),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [randn(3, 2), randn(3, 2)]),
    "mse_loss, none": (lambda a, b: F.mse_loss(a, b, "none"), [randn(3, 2), randn(3, 2)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_through_autograd_equal_central_differences(name):
    """Every input's .grad after backward(dout) is the VJP of the function (float64)."""
    fn, inputs = CASES[name]
    check_tensor_grad(fn, *inputs, name=name, rtol=1e-5, atol=1e-7)


def test_conv2d_leaves_the_input_gradient_out_when_the_input_needs_none():
    """The first layer's input is a constant: it gets no gradient, the weight still does."""
    x = Tensor(randn(2, 1, 5, 5))
    w = Tensor(randn(3, 1, 3, 3), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None
    x_grad = Tensor(x.data, requires_grad=True)
    w2 = Tensor(w.data, requires_grad=True)
    F.conv2d(x_grad, w2).sum().backward()
    np.testing.assert_allclose(w.grad, w2.grad)
    assert x_grad.grad.shape == x.shape


def test_batch_norm_updates_the_running_buffers_in_place_only_in_training():
    mean, var = np.zeros(2), np.ones(2)
    ids = id(mean), id(var)
    x = Tensor(np.array([[1.0, 2.0], [3.0, 6.0]]))
    F.batch_norm(x, mean, var, training=True, momentum=0.5)
    assert (id(mean), id(var)) == ids
    np.testing.assert_allclose(mean, [1.0, 2.0])
    np.testing.assert_allclose(var, [0.5 + 0.5 * 2.0, 0.5 + 0.5 * 8.0])
    F.batch_norm(x, mean, var, training=False)
    np.testing.assert_allclose(mean, [1.0, 2.0])


def test_dropout_is_the_same_tensor_in_evaluation():
    x = Tensor(randn(3), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x


def test_mixed_float_dtypes_promote_and_each_gradient_keeps_its_input_dtype():
    x = Tensor(randn(2, 3, 4, 4), requires_grad=True, dtype=np.float32)
    w = Tensor(randn(2, 3, 3, 3), requires_grad=True, dtype=np.float64)
    out = F.conv2d(x, w)
    assert out.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    assert F.linear(Tensor(randn(2, 3), dtype=np.float32), Tensor(randn(4, 3))).dtype == np.float64


def test_float32_model_stays_float32():
    x = Tensor(randn(2, 3, 6, 6), dtype=np.float32)
    w = Tensor(randn(4, 3, 3, 3), requires_grad=True, dtype=np.float32)
    out = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
    loss = F.cross_entropy(out.reshape(2, -1), np.array([0, 1]))
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


def test_no_grad_records_nothing():
    w = Tensor(randn(2, 1, 2, 2), requires_grad=True)
    with no_grad():
        out = F.conv2d(Tensor(randn(1, 1, 3, 3)), w)
    assert not out.requires_grad and out._ctx is None


# ---------------------------------------------------------------------- bad input
X4 = Tensor(np.zeros((2, 3, 5, 5)))
W4 = Tensor(np.zeros((4, 3, 3, 3)))


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(X4, Tensor(np.zeros((4, 2, 3, 3)))), ValueError, "3 channels but weight expects 2"),
    (lambda: F.conv2d(X4, Tensor(np.zeros((4, 3, 7, 3)))), ValueError, "larger than the padded input"),
    (lambda: F.conv2d(X4, W4, stride=0), ValueError, "stride must be an int >= 1"),
    (lambda: F.conv2d(X4, W4, stride=-1), ValueError, "stride must be an int >= 1"),
    (lambda: F.conv2d(X4, W4, padding=-1), ValueError, "padding must be an int >= 0"),
    (lambda: F.conv2d(Tensor(np.zeros((3, 5, 5))), W4), ValueError, "x must be 4-D"),
    (lambda: F.conv2d(X4, W4, Tensor(np.zeros(3))), ValueError, r"bias must have shape \(4,\)"),
    (lambda: F.conv2d(X4, np.zeros((4, 3, 3, 3), complex)), TypeError, "data must be numeric"),
    (lambda: F.max_pool2d(Tensor(np.zeros((5, 5))), 2), ValueError, "x must be 4-D"),
    (lambda: F.max_pool2d(X4, 6), ValueError, "larger than the padded input"),
    (lambda: F.avg_pool2d(X4, 2, stride=0), ValueError, "stride must be an int >= 1"),
    (lambda: F.avg_pool2d(X4, 2, padding=-1), ValueError, "padding must be an int >= 0"),
    (lambda: F.linear(Tensor(np.zeros((2, 5))), Tensor(np.zeros((3, 4)))), ValueError, "in_features = 4"),
    (lambda: F.batch_norm(Tensor(np.zeros((2, 3))), [0, 0, 0], [1, 1, 1]), TypeError,
     "running_mean must be an ndarray"),
    (lambda: F.batch_norm(Tensor(np.zeros((1, 3))), np.zeros(3), np.ones(3), training=True),
     ValueError, "more than 1 value per channel"),
    (lambda: F.dropout(X4, 0.5, training=True), TypeError, "needs rng"),
    (lambda: F.dropout(X4, 1.0, training=False), ValueError, r"p must be in \[0, 1\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), Tensor([0, 1])), TypeError,
     "not a Tensor"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])), TypeError,
     "integer class indices"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), ValueError,
     r"in \[0, 3\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((0, 3))), np.array([], int)), ValueError,
     "at least one sample"),
    (lambda: F.mse_loss(Tensor(np.zeros(3)), Tensor(np.zeros(2))), ValueError, "same shape"),
    (lambda: F.log_softmax(Tensor(np.zeros((2, 3))), axis=3), ValueError, "out of range"),
])
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
