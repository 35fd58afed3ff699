"""Hessian diagonals by second-order backpropagation, checked against explicit Jacobians,
finite differences and per-sample loops."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.curvature import hessian_diagonal, loss_gradients
from nnprune.curvature_diag import (fisher_diagonal, gauss_newton_diagonal, hessian_diagonals,
                                    lecun_diagonal, unit_curvature)
from strategies import curvature_nets

pytestmark = pytest.mark.hessian


def batch(shape, k, seed, n=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), rng.integers(0, k, n)


def explicit_gauss_newton_diagonal(model, x, y, loss="cross_entropy"):
    """diag((1/N) Σ_n J_nᵀ H_ℓ,n J_n) from the Jacobian rows ∂z_nk/∂w, one backward each."""
    names = [n for n, _ in model.named_parameters()]
    z = model(Tensor(x)).data
    n, k = z.shape
    total = {name: 0.0 for name in names}
    for i in range(n):
        rows = [loss_gradients(model, lambda m, i=i, c=c: m(Tensor(x[i:i + 1]))[0, c])
                for c in range(k)]
        if loss == "cross_entropy":
            p = np.exp(z[i] - z[i].max())
            p /= p.sum()
            h_out = np.diag(p) - np.outer(p, p)
        else:
            h_out = 2.0 / k * np.eye(k)
        for name in names:
            jac = np.stack([r[name].ravel() for r in rows])  # (K, n_params)
            total[name] = total[name] + np.einsum("kp,kl,lp->p", jac, h_out, jac).reshape(
                rows[0][name].shape)
    return {name: v / n for name, v in total.items()}


def clear_of_kinks(model, x, margin):
    """True when every ReLU input is at least ``margin`` from 0 and every max-pool window's
    largest value beats the runner-up by ``margin``: the net is linear in each weight nearby."""
    out = x
    for layer in model:
        if isinstance(layer, nn.ReLU) and np.abs(out).min() < margin:
            return False
        if isinstance(layer, nn.MaxPool2d):
            n, c, h, w = out.shape
            kh, kw = layer.kernel_size
            windows = out[:, :, :h // kh * kh, :w // kw * kw].reshape(
                n, c, h // kh, kh, w // kw, kw).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, -1, kh * kw)
            top2 = np.sort(windows, axis=-1)[..., -2:]
            if (top2[..., 1] - top2[..., 0]).min() < margin:
                return False
        out = layer(Tensor(out)).data
    return True


@settings(max_examples=15, deadline=None)
@given(curvature_nets())
def test_second_order_backprop_equals_the_explicit_gauss_newton_diagonal(net):
    """diag(JᵀH_ℓJ)/N for every weight and bias of drawn Conv/pool/Linear/ReLU/Tanh chains."""
    model, shape, k, seed = net
    x, y = batch(shape, k, seed)
    fast = gauss_newton_diagonal(model, x, y, batch_size=2)
    slow = explicit_gauss_newton_diagonal(model, x, y)
    assert set(fast) == set(slow)
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-8, atol=1e-12, err_msg=name)


@settings(max_examples=8, deadline=None)
@given(curvature_nets())
def test_mse_gauss_newton_diagonal_equals_the_explicit_one(net):
    """The MSE factor √(2/K)·I gives diag(JᵀH_ℓJ)/N too."""
    model, shape, k, seed = net
    x, _ = batch(shape, k, seed)
    t = np.random.default_rng(seed + 1).standard_normal((len(x), k))
    fast = gauss_newton_diagonal(model, x, t, loss="mse")
    slow = explicit_gauss_newton_diagonal(model, x, t, loss="mse")
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-8, atol=1e-12, err_msg=name)


@settings(max_examples=8, deadline=None)
@given(curvature_nets(piecewise_linear=True))
def test_gauss_newton_is_the_exact_hessian_diagonal_of_piecewise_linear_nets(net):
    """ReLU/pool/Linear chains are piecewise linear in any one weight: ∂²z/∂w² = 0, so the
    Gauss–Newton diagonal is the Hessian's (finite differences, float64)."""
    model, shape, k, seed = net
    x, y = batch(shape, k, seed)
    # finite differences are only valid away from the kinks: no ReLU input and no max-pool
    # tie within reach of the weight steps (about 1e-4 relative)
    assume(clear_of_kinks(model, x, margin=1e-3))
    exact = hessian_diagonal(model, lambda m: F.cross_entropy(m(Tensor(x)), y))
    fast = gauss_newton_diagonal(model, x, y)
    for name in fast:
        np.testing.assert_allclose(fast[name], exact[name], rtol=1e-4, atol=1e-7, err_msg=name)


@settings(max_examples=8, deadline=None)
@given(curvature_nets(piecewise_linear=False))
def test_gauss_newton_is_the_exact_hessian_diagonal_of_the_last_layer(net):
    """With Tanh the hidden layers' f'' terms differ, but the output is linear in the last
    layer's weights: there diag(G) = diag(H) for any chain."""
    model, shape, k, seed = net
    x, y = batch(shape, k, seed)
    last = f"{len(model) - 1}.weight"
    exact = hessian_diagonal(model, lambda m: F.cross_entropy(m(Tensor(x)), y), [last])
    fast = gauss_newton_diagonal(model, x, y)
    np.testing.assert_allclose(fast[last], exact[last], rtol=1e-4, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(curvature_nets())
def test_lecun_recursion_is_exact_on_the_output_layer(net):
    """OBD's recursion starts from diag(H_ℓ): on the output layer it is diag(G) exactly."""
    model, shape, k, seed = net
    x, y = batch(shape, k, seed)
    last = f"{len(model) - 1}.weight"
    np.testing.assert_allclose(lecun_diagonal(model, x, y)[last],
                               gauss_newton_diagonal(model, x, y)[last], rtol=1e-10, atol=1e-14)


def test_lecun_recursion_is_exact_without_cross_terms_and_approximate_with_them():
    """MSE has a diagonal H_ℓ, so one hidden layer below the output has no cross terms and
    LeCun's recursion is diag(G) there; one layer further down (or under cross-entropy,
    whose H_ℓ = diag(p) − ppᵀ is not diagonal) the dropped cross terms show."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    one = nn.Sequential(nn.Linear(3, 4, rng=0, dtype=np.float64), nn.Tanh(),
                        nn.Linear(4, 2, rng=1, dtype=np.float64))
    for name, value in lecun_diagonal(one, x, t, loss="mse").items():
        np.testing.assert_allclose(value, gauss_newton_diagonal(one, x, t, loss="mse")[name],
                                   rtol=1e-10)
    labels = np.array([0, 1, 1, 0, 1, 0])
    assert not np.allclose(lecun_diagonal(one, x, labels)["0.weight"],
                           gauss_newton_diagonal(one, x, labels)["0.weight"])
    two = nn.Sequential(nn.Linear(3, 4, rng=0, dtype=np.float64), nn.Tanh(),
                        nn.Linear(4, 4, rng=2, dtype=np.float64), nn.Tanh(),
                        nn.Linear(4, 2, rng=1, dtype=np.float64))
    assert not np.allclose(lecun_diagonal(two, x, t, loss="mse")["0.weight"],
                           gauss_newton_diagonal(two, x, t, loss="mse")["0.weight"])


@settings(max_examples=10, deadline=None)
@given(curvature_nets())
def test_fisher_diagonal_is_the_mean_of_squared_per_sample_gradients(net):
    """(1/N) Σ_n (∇ℓ_n)², against a loop computing each sample's gradient alone."""
    model, shape, k, seed = net
    x, y = batch(shape, k, seed, n=4)
    loop = {}
    for i in range(len(x)):
        g = loss_gradients(model, lambda m, i=i: F.cross_entropy(m(Tensor(x[i:i + 1])),
                                                                 y[i:i + 1]))
        for name, value in g.items():
            loop[name] = loop.get(name, 0.0) + value ** 2 / len(x)
    fast = fisher_diagonal(model, x, y, batch_size=3)
    for name in fast:
        np.testing.assert_allclose(fast[name], loop[name], rtol=1e-9, atol=1e-14, err_msg=name)


def test_unit_curvature_is_the_gauss_newton_diagonal_of_the_biases():
    """A bias is a unit's pre-activation shift: its GN diagonal is the unit's curvature."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, rng=0, dtype=np.float64), nn.ReLU(),
                          nn.Linear(4, 3, rng=1, dtype=np.float64))
    x, y = batch((1, 2, 3), 3, 0, n=5)
    units, gn = unit_curvature(model, x, y), gauss_newton_diagonal(model, x, y)
    np.testing.assert_allclose(units["1"], gn["1.bias"], rtol=1e-10)
    np.testing.assert_allclose(units["3"], gn["3.bias"], rtol=1e-10)


def test_every_kind_through_the_dispatcher_and_float32_models():
    """hessian_diagonals runs every kind; the finite-difference kinds on a float64 copy of a
    float32 model (the direct call on it is refused: float64 is needed there)."""
    model32 = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    x, y = batch((4,), 2, 0, n=6)
    with pytest.raises(TypeError, match="float64"):
        hessian_diagonal(model32, lambda m: F.cross_entropy(m(Tensor(x)), y))
    gn = hessian_diagonals(model32, x, y, "gauss-newton")
    exact = hessian_diagonals(model32, x.astype(np.float32), y, "exact")
    for name in gn:
        assert exact[name].dtype == np.float32
        np.testing.assert_allclose(exact[name], gn[name], rtol=1e-3, atol=1e-6)
    hutch = hessian_diagonals(model32, x, y, "hutchinson", samples=400, seed=0)
    assert np.corrcoef(hutch["0.weight"].ravel(), gn["0.weight"].ravel())[0, 1] > 0.8
    assert set(hessian_diagonals(model32, x, y, "fisher")) == {"0.weight", "2.weight"}


def test_bad_input_is_refused_clearly():
    """An unsupported layer, an unknown kind or loss, exact above its size limit, labels."""
    x, y = batch((4,), 2, 0)
    bn = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="layer 1 is BatchNorm1d.*hutchinson"):
        gauss_newton_diagonal(bn, x, y)
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="hessian must be one of"):
        hessian_diagonals(model, x, y, "newton")
    with pytest.raises(ValueError, match="loss must be one of"):
        fisher_diagonal(model, x, y, loss="hinge")
    with pytest.raises(ValueError, match="class indices"):
        gauss_newton_diagonal(model, x, y + 5)
    with pytest.raises(TypeError, match="Sequential"):
        lecun_diagonal(nn.Linear(4, 2), x, y)
    big = nn.Sequential(nn.Linear(4, 2000))
    with pytest.raises(ValueError, match="limited to 4096 weights per layer.*gauss-newton"):
        hessian_diagonals(big, x, y % 2, "exact")
