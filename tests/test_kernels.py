"""Kernels: each fast kernel equals its naive twin, each backward equals central differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import Tensor
from nnprune import functional as F
from nnprune.functional import naive
from nnprune.functional.conv import conv2d_backward, conv2d_forward

pytestmark = pytest.mark.kernels


@st.composite
def conv_cases(draw):
    """Non-square kernels, H ≠ W, stride, padding, dilation, batch 1 included."""
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s, p, d = (draw(st.tuples(st.integers(lo, hi), st.integers(lo, hi)))
               for lo, hi in ((1, 3), (0, 2), (1, 2)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 7))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**20)))
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, kh, kw)),
            rng.standard_normal(f), s, p, d)


@given(conv_cases())
def test_conv2d_equals_its_naive_twin_forward_and_backward(case):
    x, w, b, s, p, d = case
    out, cache = conv2d_forward(x, w, b, s, p, d)
    ref, ref_cache = naive.conv2d_naive_forward(x, w, b, s, p, d)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    for fast, slow in zip(conv2d_backward(dout, cache), naive.conv2d_naive_backward(dout, ref_cache)):
        np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10)


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(k[0], 7)), draw(st.integers(k[1], 7))
    x = np.random.default_rng(draw(st.integers(0, 2**20))).integers(-2, 3, (2, 2, h, w)).astype(float)
    return x, k, s, p  # small integers: many ties


@given(pool_cases())
def test_pools_equal_their_naive_twins_including_ties(case):
    """The first maximum in the window gets the gradient, as the naive loop says."""
    x, k, s, p = case
    out = F.max_pool2d(Tensor(x, requires_grad=True), k, s, p)
    ref, cache = naive.max_pool2d_naive_forward(x, k, s, p)
    np.testing.assert_array_equal(out.data, ref)
    dout = np.random.default_rng(0).standard_normal(out.shape)
    xt = Tensor(x, requires_grad=True)
    F.max_pool2d(xt, k, s, p).backward(dout)
    np.testing.assert_allclose(xt.grad, naive.max_pool2d_naive_backward(dout, cache))
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), k, s, p).data,
                               naive.avg_pool2d_naive_forward(x, k, s, p), rtol=1e-12)


def test_max_pool_tie_rule_by_hand():
    x = Tensor(np.array([[[[1.0, 1.0], [1.0, 0.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    assert x.grad.tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def numeric_vjp(f, x, dout, h=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = np.sum((f(xp) - f(xm)) * dout) / (2 * h)
    return grad


OPS = {
    "conv2d": (lambda a, w: F.conv2d(a, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
               [(2, 2, 5, 4), (3, 2, 2, 3)]),
    "linear": (lambda a, w: F.linear(a, w), [(3, 4), (2, 4)]),
    "max_pool2d": (lambda a: F.max_pool2d(a, (2, 3), (1, 2), (1, 1)), [(1, 2, 5, 6)]),
    "avg_pool2d": (lambda a: F.avg_pool2d(a, 2, 1, 1), [(2, 1, 4, 3)]),
    "log_softmax": (lambda a: F.log_softmax(a, axis=1), [(3, 5)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([0, 2, 1])), [(3, 4)]),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [(3, 2), (3, 2)]),
    "batch_norm_train": (lambda a, g, b: F.batch_norm(a, np.zeros(3), np.ones(3), g, b, training=True),
                         [(4, 3, 2, 2), (3,), (3,)]),
    "tanh": (lambda a: F.tanh(a), [(2, 3)]),
    "sigmoid": (lambda a: F.sigmoid(a), [(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
@given(seed=st.integers(0, 2**20))
def test_backward_matches_central_differences(name, seed):
    """For every input: the VJP with a random dout equals the finite-difference VJP in float64."""
    f, shapes = OPS[name]
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(s) for s in shapes]
    tensors = [Tensor(x, requires_grad=True) for x in xs]
    out = f(*tensors)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    for i, (x, t) in enumerate(zip(xs, tensors)):
        def fi(v, i=i):
            args = [Tensor(a) for a in xs]
            args[i] = Tensor(v)
            return f(*args).data
        expected = numeric_vjp(fi, x, dout)
        assert np.allclose(t.grad, expected, rtol=1e-5, atol=1e-6), (
            f"{name}: gradient of argument {i} at index "
            f"{np.unravel_index(np.argmax(np.abs(t.grad - expected)), x.shape)}: "
            f"got {t.grad.ravel()[np.argmax(np.abs(t.grad - expected))]}, "
            f"expected {expected.ravel()[np.argmax(np.abs(t.grad - expected))]}")


def test_cross_entropy_is_stable_for_extreme_logits():
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
    assert loss.item() == pytest.approx(naive.cross_entropy_naive(logits.data, [1, 0]))


def test_batch_norm_matches_naive_and_updates_running_stats():
    x = np.random.default_rng(0).standard_normal((5, 3, 2, 2))
    g, b = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0])
    rm, rv = np.zeros(3), np.ones(3)
    out = F.batch_norm(Tensor(x), rm, rv, Tensor(g), Tensor(b), training=True, momentum=0.1)
    np.testing.assert_allclose(out.data, naive.batch_norm_naive_forward(x, g, b), rtol=1e-10)
    m = x.size // 3
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1))


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((3, 1, 3, 3)))), ValueError, "channels"),
    (lambda: F.conv2d(Tensor(np.ones((1, 1, 2, 2))), Tensor(np.ones((1, 1, 3, 3)))), ValueError, "larger"),
    (lambda: F.conv2d(Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3))), stride=-1), ValueError, "stride"),
    (lambda: F.conv2d(Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3))), padding=-1), ValueError, "padding"),
    (lambda: F.conv2d(Tensor(np.ones((1, 5, 5))), Tensor(np.ones((1, 1, 3, 3)))), ValueError, "4-D"),
    (lambda: F.conv2d(Tensor(np.ones((0, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3)))), ValueError, "empty"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0])), TypeError, "integer"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 3])), ValueError, "range|\\[0, 3\\)"),
    (lambda: F.cross_entropy(Tensor(np.ones((0, 3))), np.array([], dtype=int)), ValueError, "empty"),
    (lambda: F.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3), ValueError, "larger"),
    (lambda: F.dropout(Tensor(np.ones(3)), 1.0), ValueError, "p"),
    (lambda: F.dropout(Tensor(np.ones(3)), 0.5, training=True), TypeError, "rng"),
    (lambda: F.mse_loss(Tensor(np.ones(3)), Tensor(np.ones(2))), ValueError, "shape"),
    (lambda: Tensor(np.array(["a"])), TypeError, "numeric"),
    (lambda: F.batch_norm(Tensor(np.ones((1, 3))), np.zeros(3), np.ones(3), training=True), ValueError, "more than 1"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()
