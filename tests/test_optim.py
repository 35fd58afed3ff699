"""Optimizers: their update rules step by step, the pruning-mask hook, schedules, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import nn
from nnprune.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR

pytestmark = pytest.mark.optim


def param_with_grads(seed, shape=(3, 4), steps=5):
    rng = np.random.default_rng(seed)
    p = nn.Parameter(rng.standard_normal(shape), dtype=np.float64)
    grads = [rng.standard_normal(shape) for _ in range(steps)]
    return p, grads


def run(opt, p, grads):
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


@given(st.integers(0, 2**20), st.sampled_from([0.0, 0.9]), st.sampled_from([0.0, 1e-2]),
       st.booleans())
def test_sgd_follows_the_pytorch_rule(seed, momentum, wd, nesterov):
    """v ← μv + (g + λw) (v = g on step 1); w ← w − lr·(g + μv if nesterov else v)."""
    nesterov = nesterov and momentum > 0
    p, grads = param_with_grads(seed)
    w, v, lr = p.data.copy(), None, 0.1
    for g in grads:
        g = g + wd * w
        v = g.copy() if v is None else momentum * v + g
        w = w - lr * ((g + momentum * v) if nesterov else (v if momentum else g))
    out = run(SGD([p], lr, momentum=momentum, weight_decay=wd, nesterov=nesterov), p, grads)
    np.testing.assert_allclose(out, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_and_adamw_follow_their_rules(cls):
    """Bias-corrected Adam; AdamW decays the weight directly instead of adding λw to g."""
    p, grads = param_with_grads(1)
    w, m, v = p.data.copy(), 0.0, 0.0
    lr, (b1, b2), eps, wd = 1e-2, (0.9, 0.999), 1e-8, 0.1
    for t, g in enumerate(grads, start=1):
        if cls is AdamW:
            w = w - lr * wd * w
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    out = run(cls([p], lr=lr, weight_decay=wd), p, grads)
    np.testing.assert_allclose(out, w, rtol=1e-12, atol=1e-12)


@pytest.mark.apply
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, 0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
    lambda ps: Adam(ps, 1e-2, weight_decay=1e-2),
    lambda ps: AdamW(ps, 1e-2),
])
@given(seed=st.integers(0, 2**20))
def test_pruned_weights_stay_exactly_zero_through_many_steps(make, seed):
    """Whatever momentum, weight decay or Adam state do, masked entries stay 0 and buffers too."""
    p, grads = param_with_grads(seed, steps=30)
    mask = np.random.default_rng(seed + 1).random(p.shape) < 0.5
    p.set_mask(mask)
    opt = make([p])
    for g in grads:
        p.grad = g.copy()  # a raw gradient that is non-zero on pruned entries too
        opt.step()
        assert np.all(p.data[~mask] == 0)
    assert all(np.all(buf[~mask] == 0) for buf in opt.state[0].values())


def test_params_without_grad_are_left_alone():
    p, q = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    p.grad = np.ones(3, dtype=np.float32)
    SGD([p, q], 0.5).step()
    assert np.allclose(p.data, 0.5) and np.allclose(q.data, 1.0)


def test_step_lr_and_cosine_reach_their_formulas_and_endpoints():
    p = nn.Parameter(np.ones(1))
    opt = SGD([p], 0.1)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    lrs = [sched.step() for _ in range(5)]
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])
    opt = SGD([p], 0.2)
    cos = CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    lrs = [cos.step() for _ in range(6)]
    assert lrs[3] == pytest.approx(0.01) and lrs[5] == pytest.approx(0.01)
    assert lrs[1] == pytest.approx(0.01 + 0.19 * (1 + math.cos(math.pi / 2)) / 2)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


@pytest.mark.parametrize("make, match", [
    (lambda p: SGD([], 0.1), "empty"),
    (lambda p: SGD([np.ones(2)], 0.1), "Parameter"),
    (lambda p: SGD(p, 0.0), "lr"),
    (lambda p: SGD(p, "0.1"), "lr"),
    (lambda p: SGD(p, 0.1, momentum=1.5), "momentum"),
    (lambda p: SGD(p, 0.1, weight_decay=-1), "weight_decay"),
    (lambda p: SGD(p, 0.1, nesterov=True), "nesterov"),
    (lambda p: Adam(p, betas=(0.9,)), "betas"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: Adam(p, eps=0), "eps"),
    (lambda p: StepLR(SGD(p, 0.1), step_size=0), "step_size"),
    (lambda p: StepLR("opt", step_size=1), "Optimizer"),
    (lambda p: CosineAnnealingLR(SGD(p, 0.1), T_max=3, eta_min=1.0), "eta_min"),
])
def test_bad_arguments_are_rejected(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([nn.Parameter(np.ones(2))])
