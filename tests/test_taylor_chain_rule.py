"""The Taylor / SNIP saliency is a derivative: d L(c ⊙ w) / dc at c = 1 equals w · dL/dw.

SNIP (Lee et al. 2019) defines a connection's sensitivity through a gate c on it,
g_j = ∂L(c ⊙ w)/∂c_j at c = 1, and the first-order Taylor criterion (Molchanov et al. 2017)
is |w · dL/dw|. By the chain rule the two agree; here it is checked numerically with central
finite differences in float64 on a small conv + linear model, with the gradients from
``nnprune.train.gradients`` and the scores from ``compute_scores``.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import Tensor, nn, no_grad
from nnprune import functional as F
from nnprune.prune.apply import prunable_parameters, prunable_weights
from nnprune.prune.scores import compute_scores
from nnprune.train import gradients

pytestmark = pytest.mark.scores

H = 1e-6  # central differences: truncation ~H², round-off ~1e-16/H


def small_model(seed):
    """conv (3, 2, 2, 3) pad (1, 0) → tanh → flatten → fc (4, 36), float64; smooth everywhere."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, (2, 3), padding=(1, 0), rng=rng, dtype=np.float64), nn.Tanh(),
        nn.Flatten(), nn.Linear(3 * 6 * 2, 4, rng=rng, dtype=np.float64))


def gate_derivatives(model, x, y):
    """{name: dL(c ⊙ w)/dc at c = 1}, entry by entry, by central differences."""
    def loss():
        with no_grad():
            return F.cross_entropy(model(Tensor(x, dtype=np.float64)), y).item()

    out = {}
    for name, p in prunable_parameters(model).items():
        w = p.data.copy()
        d = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            c = np.ones_like(w)
            c[i] = 1 + H
            p.data[...] = c * w
            up = loss()
            c[i] = 1 - H
            p.data[...] = c * w
            down = loss()
            d[i] = (up - down) / (2 * H)
        p.data[...] = w
        out[name] = d
    return out


@settings(max_examples=5)
@given(st.integers(0, 2**16))
def test_gate_derivative_equals_weight_times_gradient(seed):
    """For every weight entry: dL(c ⊙ w)/dc_j at c = 1 = w_j · dL/dw_j (to ~1e-7), so the
    taylor score is |that| and the snip score is |that| / Σ|that| over all weights."""
    rng = np.random.default_rng(seed)
    model = small_model(seed)
    x, y = rng.standard_normal((6, 2, 5, 4)), rng.integers(0, 4, 6)
    fd = gate_derivatives(model, x, y)
    grads = gradients(model, (x, y), batch_size=6)
    weights = prunable_weights(model)
    for name, w in weights.items():
        np.testing.assert_allclose(w * grads[name], fd[name], rtol=1e-6, atol=1e-9,
                                   err_msg=f"d L(c ⊙ w)/dc of {name}")
    taylor = compute_scores("taylor", weights, grads)
    snip = compute_scores("snip", weights, grads)
    total = sum(np.abs(d).sum() for d in fd.values())
    for name in weights:
        np.testing.assert_allclose(taylor[name], np.abs(fd[name]), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(snip[name], np.abs(fd[name]) / total, rtol=1e-6,
                                   atol=1e-9 / total)
