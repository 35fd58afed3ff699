"""Hessian-vector products of a model's loss, checked where the Hessian is known exactly.

A Linear layer under the mean squared loss L = 1/(N·K) Σ (x Wᵀ + b − y)² is quadratic in W,
with Hessian blocks ∂²L/∂W_ij∂W_kl = 2/(N·K) δ_ik Σ_n x_nj x_nl — so the central difference of
gradients must match it up to rounding, and OBD/OBS predictions must match the real loss.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.curvature import hessian, hessian_diagonal, hessian_vector_product, loss_gradients
from nnprune.prune.hessian import obd_saliency, obs_prune

pytestmark = pytest.mark.hessian


def regression(seed, n=12, d=4, k=2):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    layer = nn.Linear(d, k, rng=seed, dtype=np.float64)
    loss_fn = lambda m: F.mse_loss(m(Tensor(x)), Tensor(y))  # noqa: E731
    h = np.kron(np.eye(k), 2 * x.T @ x / (n * k))  # W flattened row-major: (k, d)
    return layer, loss_fn, h, x, y


@given(st.integers(0, 2**20))
def test_hvp_matches_the_analytic_hessian_of_a_quadratic(seed):
    """H v by central differences equals the exact H v of a linear least-squares loss."""
    layer, loss_fn, h, *_ = regression(seed)
    v = np.random.default_rng(seed + 1).standard_normal(layer.weight.shape)
    hv = hessian_vector_product(layer, loss_fn, {"weight": v})["weight"]
    np.testing.assert_allclose(hv.ravel(), h @ v.ravel(), rtol=1e-6, atol=1e-8)


def test_full_hessian_and_exact_diagonal_match_the_formula():
    layer, loss_fn, h, *_ = regression(0)
    np.testing.assert_allclose(hessian(layer, loss_fn, "weight"), h, rtol=1e-6, atol=1e-8)
    diag = hessian_diagonal(layer, loss_fn, ["weight"])["weight"]
    np.testing.assert_allclose(diag.ravel(), np.diag(h), rtol=1e-6, atol=1e-8)


def test_hutchinson_estimate_is_unbiased_and_seeded():
    """Averaged over many Rademacher probes the estimate approaches diag(H); same seed, same bits."""
    layer, loss_fn, h, *_ = regression(1)
    est = hessian_diagonal(layer, loss_fn, ["weight"], method="hutchinson", samples=400, seed=3)
    again = hessian_diagonal(layer, loss_fn, ["weight"], method="hutchinson", samples=400, seed=3)
    assert np.array_equal(est["weight"], again["weight"])
    err = np.abs(est["weight"].ravel() - np.diag(h)).max() / np.abs(np.diag(h)).max()
    assert err < 0.25


def test_weights_and_gradients_are_restored():
    layer, loss_fn, *_ = regression(2)
    before = layer.weight.data.copy()
    layer.weight.grad = np.full(layer.weight.shape, 7.0)
    hessian_vector_product(layer, loss_fn, {"weight": np.ones(layer.weight.shape)})
    loss_gradients(layer, loss_fn)
    assert np.array_equal(layer.weight.data, before) and np.all(layer.weight.grad == 7.0)


def test_obd_and_obs_predict_the_real_loss_of_a_trained_linear_layer():
    """At the least-squares minimum, OBD's ½h_kk w_k² is the real cost of deleting one weight,
    and OBS's δL is the real cost of deleting half of them with compensation."""
    layer, loss_fn, h, x, y = regression(5, n=40, d=5, k=1)
    xb = np.hstack([x, np.ones((len(x), 1))])
    solution = np.linalg.lstsq(xb, y, rcond=None)[0]  # (d + 1, 1)
    layer.weight.data[...] = solution[:-1].T
    layer.bias.data[...] = solution[-1]
    loss = lambda: float(loss_fn(layer).data)  # noqa: E731
    base, w = loss(), layer.weight.data.ravel().copy()
    diag = hessian_diagonal(layer, loss_fn, ["weight"])["weight"].ravel()
    saliency = obd_saliency(w, diag)
    for k in range(w.size):
        layer.weight.data[...] = np.where(np.arange(w.size) == k, 0.0, w).reshape(1, -1)
        assert loss() - base == pytest.approx(saliency[k], rel=1e-5)
    # OBS with ∂²L/∂W² (bias held at its optimum): exact, since L is quadratic in W
    new, mask, predicted = obs_prune(w, hessian(layer, loss_fn, "weight"), 0.4)
    layer.weight.data[...] = new.reshape(1, -1)
    assert loss() - base == pytest.approx(predicted, rel=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda l, f: hessian_vector_product(l, f, {"nope": np.ones(1)}), "unknown parameter"),
    (lambda l, f: hessian_vector_product(l, f, {"weight": np.ones(3)}), "shape"),
    (lambda l, f: hessian_vector_product(l, f, {"weight": np.ones((2, 4))}, eps=0), "eps"),
    (lambda l, f: hessian_diagonal(l, f, method="lanczos"), "method"),
    (lambda l, f: hessian_diagonal(l, f, method="hutchinson", samples=0), "samples"),
    (lambda l, f: hessian(l, f, "weight", max_size=3), "max_size"),
    (lambda l, f: loss_gradients(l, lambda m: m(Tensor(np.ones((2, 4))))), "one-element"),
])
def test_bad_input_is_rejected(call, match):
    layer, loss_fn, *_ = regression(0)
    with pytest.raises(ValueError, match=match):
        call(layer, loss_fn)


def test_non_models_and_non_callable_losses_are_type_errors():
    layer, loss_fn, *_ = regression(0)
    with pytest.raises(TypeError, match="model must have a named_parameters"):
        loss_gradients(object(), loss_fn)
    with pytest.raises(TypeError, match="model must have a named_parameters"):
        hessian_diagonal(None, loss_fn)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        loss_gradients(layer, None)
    with pytest.raises(ValueError, match="eps"):
        hessian_vector_product(layer, loss_fn, {"weight": np.ones((2, 4))}, eps="1e-4")


def test_float32_models_are_refused():
    layer = nn.Linear(2, 1)
    with pytest.raises(TypeError, match="float64"):
        hessian_vector_product(layer, lambda m: m(Tensor(np.ones((1, 2)))).sum(),
                               {"weight": np.ones((1, 2))})
