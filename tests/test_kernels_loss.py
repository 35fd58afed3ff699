"""Loss kernels: log-softmax and cross-entropy are stable at extreme logits, equal their naive
twins, have the gradients their formulas state; mean squared error; clear errors."""
import numpy as np
import pytest
from gradcheck import check_vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays, classification_problems

from nnprune.functional import naive
from nnprune.functional.loss import (REDUCTIONS, cross_entropy_backward,
                                     cross_entropy_forward, log_softmax_backward,
                                     log_softmax_forward, mse_loss_backward, mse_loss_forward)

pytestmark = pytest.mark.kernels


@given(problem=classification_problems(low=-1e4, high=1e4))
def test_log_softmax_is_a_normalised_log_distribution_even_at_extreme_logits(problem):
    """exp(log_softmax) sums to 1 along the axis, every value is finite and ≤ 0."""
    logits, _ = problem
    out, _ = log_softmax_forward(logits, axis=1)
    assert np.isfinite(out).all() and (out <= 0).all()
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_log_softmax_backward_equals_central_differences(axis):
    x = np.random.default_rng(0).standard_normal((3, 4))
    out, cache = log_softmax_forward(x, axis)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    check_vjp(lambda a: log_softmax_forward(a, axis)[0], (x,),
              (log_softmax_backward(dout, cache),), dout, name="log_softmax", arg_names=("x",))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(problem=classification_problems())
def test_cross_entropy_equals_its_naive_twin(reduction, problem):
    logits, target = problem
    loss, _ = cross_entropy_forward(logits, target, reduction)
    np.testing.assert_allclose(loss, naive.cross_entropy_naive(logits, target, reduction),
                               rtol=1e-10, atol=1e-12)


@given(problem=classification_problems())
def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(problem):
    logits, target = problem
    _, cache = cross_entropy_forward(logits, target)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[target]
    np.testing.assert_allclose(cross_entropy_backward(np.float64(1.0), cache),
                               (softmax - onehot) / len(target), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=20)
@given(problem=classification_problems())
def test_cross_entropy_backward_equals_central_differences(reduction, problem):
    logits, target = problem
    loss, cache = cross_entropy_forward(logits, target, reduction)
    dout = np.random.default_rng(0).standard_normal(np.shape(loss))
    check_vjp(lambda z: cross_entropy_forward(z, target, reduction)[0], (logits,),
              (cross_entropy_backward(dout, cache),), dout, name="cross_entropy",
              arg_names=("logits",))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_at_extreme_logits(dtype):
    """Logits of ±1e4: a confident right answer costs 0, a confident wrong one about 2e4,
    and every loss and gradient is finite."""
    logits = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype)
    target = np.array([0, 1, 2])
    losses, cache = cross_entropy_forward(logits, target, "none")
    assert losses.dtype == dtype and np.isfinite(losses).all()
    np.testing.assert_allclose(losses, [0.0, 2e4, np.log(3)], rtol=1e-6)
    grad = cross_entropy_backward(np.ones(3, dtype), cache)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0, 0, 0], [1, -1, 0], [1 / 3, 1 / 3, -2 / 3]], atol=1e-6)


@given(a=arrays((2, 3)), b=arrays((2, 3)))
def test_mse_loss_values(a, b):
    for reduction, expected in (("mean", ((a - b) ** 2).mean()), ("sum", ((a - b) ** 2).sum()),
                                ("none", (a - b) ** 2)):
        np.testing.assert_allclose(mse_loss_forward(a, b, reduction)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_backward_equals_central_differences(reduction):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    loss, cache = mse_loss_forward(a, b, reduction)
    dout = rng.standard_normal(np.shape(loss))
    check_vjp(lambda u, v: mse_loss_forward(u, v, reduction)[0], (a, b),
              mse_loss_backward(dout, cache), dout, name="mse_loss",
              arg_names=("input", "target"))


# ---------------------------------------------------------------------- bad input
LOGITS, TARGET = np.zeros((2, 3)), np.array([0, 2])


@pytest.mark.parametrize("logits, target, reduction, error, match", [
    (LOGITS, np.array([0.0, 2.0]), "mean", TypeError, "target must hold integer class"),
    (LOGITS, np.array([0, 3]), "mean", ValueError, r"target labels must be in \[0, 3\)"),
    (LOGITS, np.array([-1, 0]), "mean", ValueError, r"target labels must be in \[0, 3\)"),
    (LOGITS, np.array([0, 1, 2]), "mean", ValueError, r"target must have shape \(2,\)"),
    (np.zeros((0, 3)), np.array([], int), "mean", ValueError, "at least one sample"),
    (np.zeros(3), np.array([0]), "mean", ValueError, r"logits must be \(N, K\)"),
    (LOGITS.astype(int), TARGET, "mean", TypeError, "logits must be a float32 or float64"),
    (LOGITS, TARGET, "avg", ValueError, "reduction must be one of"),
])
def test_cross_entropy_refuses_bad_input(logits, target, reduction, error, match):
    with pytest.raises(error, match=match):
        cross_entropy_forward(logits, target, reduction)


@given(label=st.one_of(st.integers(-100, -1), st.integers(3, 100)))
def test_any_label_outside_the_classes_is_refused(label):
    with pytest.raises(ValueError, match="target labels"):
        cross_entropy_forward(LOGITS, np.array([0, label]))


@pytest.mark.parametrize("x, axis, error, match", [
    (np.zeros(()), -1, ValueError, "at least one axis"),
    (np.zeros((2, 3)), 2, ValueError, "axis 2 is out of range"),
    (np.zeros((2, 0)), 1, ValueError, "empty axis"),
    (np.zeros((2, 3), int), 1, TypeError, "x must be a float32 or float64"),
])
def test_log_softmax_refuses_bad_input(x, axis, error, match):
    with pytest.raises(error, match=match):
        log_softmax_forward(x, axis)


@pytest.mark.parametrize("a, b, reduction, error, match", [
    (np.zeros(3), np.zeros(4), "mean", ValueError, "same shape"),
    (np.zeros(0), np.zeros(0), "mean", ValueError, "empty"),
    (np.zeros(3), np.zeros(3, int), "mean", TypeError, "target must be a float32"),
    (np.zeros(3), np.zeros(3), "max", ValueError, "reduction must be one of"),
])
def test_mse_loss_refuses_bad_input(a, b, reduction, error, match):
    with pytest.raises(error, match=match):
        mse_loss_forward(a, b, reduction)


@pytest.mark.parametrize("backward, cache, dout", [
    (log_softmax_backward, log_softmax_forward(np.zeros((2, 3)))[1], np.ones((3, 2))),
    (cross_entropy_backward, cross_entropy_forward(LOGITS, TARGET)[1], np.ones(2)),
    (cross_entropy_backward, cross_entropy_forward(LOGITS, TARGET, "none")[1], np.ones(())),
    (mse_loss_backward, mse_loss_forward(np.zeros(3), np.ones(3))[1], np.ones(3)),
    (mse_loss_backward, mse_loss_forward(np.zeros(3), np.ones(3), "none")[1], np.ones(2)),
])
def test_backward_refuses_a_dout_of_the_wrong_shape(backward, cache, dout):
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        backward(dout, cache)
