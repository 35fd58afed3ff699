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


def test_sgd_nesterov_with_weight_decay_matches_a_step_computed_by_hand():
    """w = 1, g = 0.5 twice, lr = 0.1, μ = 0.9, λ = 0.1, Nesterov (PyTorch's documented rule):
    step 1: g' = 0.5 + 0.1·1 = 0.6, v = 0.6, w = 1 − 0.1·(0.6 + 0.9·0.6) = 0.886;
    step 2: g' = 0.5 + 0.0886 = 0.5886, v = 0.54 + 0.5886 = 1.1286,
            w = 0.886 − 0.1·(0.5886 + 0.9·1.1286) = 0.886 − 0.160434 = 0.725566."""
    p = nn.Parameter([1.0], dtype=np.float64)
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True)
    expected = [0.886, 0.725566]
    for w in expected:
        p.grad = np.array([0.5])
        opt.step()
        assert p.data[0] == pytest.approx(w, abs=1e-12)
    np.testing.assert_allclose(opt.state[0]["momentum"], [1.1286], atol=1e-12)


def test_sgd_heavy_ball_matches_a_step_computed_by_hand():
    """Without Nesterov the step is lr·v: w = 2, g = 1 then 1, lr = 0.5, μ = 0.5:
    v = 1, w = 1.5; v = 0.5 + 1 = 1.5, w = 1.5 − 0.75 = 0.75."""
    p = nn.Parameter([2.0], dtype=np.float64)
    opt = SGD([p], lr=0.5, momentum=0.5)
    for w in (1.5, 0.75):
        p.grad = np.array([1.0])
        opt.step()
        assert p.data[0] == pytest.approx(w, abs=1e-12)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_adam_first_step_is_lr_times_the_sign_at_any_gradient_scale(scale):
    """Bias correction: after one step m̂ = g and v̂ = g², so Δw = −lr·g/(|g| + eps), i.e.
    −lr·sign(g) up to eps (without it the step would be lr·0.1/√0.001 ≈ 3.16·lr)."""
    g = np.array([3.0, -2.0, 0.5]) * scale
    p = nn.Parameter(np.zeros(3), dtype=np.float64)
    opt = Adam([p], lr=0.01)
    p.grad = g.copy()
    opt.step()
    np.testing.assert_allclose(p.data, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(p.data, -0.01 * np.sign(g), rtol=1e-3)


def test_adamw_decays_the_weight_itself_and_adam_adds_it_to_the_gradient():
    """With g = 0 and λ = 0.1, lr = 0.01: AdamW gives w·(1 − lr·λ) = 2·0.999 = 1.998 exactly
    (its Adam part sees g = 0); Adam sees g' = λw = 0.2 and moves by lr·sign = 0.01."""
    for cls, expected in ((AdamW, 1.998), (Adam, 1.99)):
        p = nn.Parameter([2.0], dtype=np.float64)
        opt = cls([p], lr=0.01, weight_decay=0.1)
        p.grad = np.zeros(1)
        opt.step()
        assert p.data[0] == pytest.approx(expected, abs=1e-9), cls.__name__


def test_adam_counts_steps_per_parameter():
    """A parameter first updated at the optimizer's third step still gets the first-step
    bias correction (PyTorch keeps a step count per parameter): it moves by lr·sign(g)."""
    p, q = nn.Parameter([0.0], dtype=np.float64), nn.Parameter([0.0], dtype=np.float64)
    opt = Adam([p, q], lr=0.1)
    for _ in range(2):
        p.grad = np.array([1.0])
        opt.step()
    p.grad, q.grad = np.array([1.0]), np.array([-5.0])
    opt.step()
    assert q.data[0] == pytest.approx(0.1, rel=1e-6)
    assert opt.state[0]["step"] == 3 and opt.state[1]["step"] == 1


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
    buffers = [buf for buf in opt.state[0].values() if isinstance(buf, np.ndarray)]
    assert buffers and all(np.all(buf[~mask] == 0) for buf in buffers)


def test_params_without_grad_are_left_alone():
    p, q = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    p.grad = np.ones(3, dtype=np.float32)
    SGD([p, q], 0.5).step()
    assert np.allclose(p.data, 0.5) and np.allclose(q.data, 1.0)


def test_schedule_endpoints():
    """Before any step both schedules give the initial rate; cosine reaches exactly η_min at
    T_max and then follows the cosine back up (PyTorch's closed form); step decays by γ
    exactly at multiples of step_size."""
    p = nn.Parameter(np.ones(1))
    cos = CosineAnnealingLR(SGD([p], 0.3), T_max=5, eta_min=0.02)
    assert cos.lr_at(0) == 0.3 and cos.optimizer.lr == 0.3
    assert cos.lr_at(5) == pytest.approx(0.02, abs=1e-15) and cos.lr_at(50) == pytest.approx(0.3)
    assert cos.lr_at(7) == pytest.approx(cos.lr_at(3)) and cos.lr_at(15) == pytest.approx(0.02)
    assert cos.lr_at(2.5) == pytest.approx((0.3 + 0.02) / 2)  # half-way: the mean
    step = StepLR(SGD([p], 0.3), step_size=3, gamma=0.1)
    assert [step.lr_at(e) for e in (0, 2, 3, 5, 6)] == pytest.approx([0.3, 0.3, 0.03, 0.03, 0.003])


def test_step_lr_and_cosine_reach_their_formulas_and_endpoints():
    p = nn.Parameter(np.ones(1))
    opt = SGD([p], 0.1)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    lrs = [sched.step() for _ in range(5)]
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])
    opt = SGD([p], 0.2)
    cos = CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    lrs = [cos.step() for _ in range(6)]
    assert lrs[3] == pytest.approx(0.01) and lrs[5] == pytest.approx(lrs[1])  # epochs 6 and 2
    assert lrs[1] == pytest.approx(0.01 + 0.19 * (1 + math.cos(math.pi / 2)) / 2)
    assert all(a >= b for a, b in zip(lrs[:4], lrs[1:4]))


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
    (lambda p: CosineAnnealingLR(SGD(p, 0.1), T_max=3, eta_min="0"), "eta_min must be a number"),
    (lambda p: StepLR(SGD(p, 0.1), step_size=1, gamma="0.5"), "gamma must be a number"),
    (lambda p: StepLR(SGD(p, 0.1), step_size=1, gamma=0), r"gamma must be a finite number in \(0, 1\]"),
    (lambda p: SGD(p[0], 0.1), "iterable of Parameters"),
    (lambda p: SGD(p + p, 0.1), r"params\[1\] is the same Parameter as params\[0\]"),
    (lambda p: SGD(p, 0.1, momentum=0.9, nesterov="yes"), "nesterov must be a bool"),
    (lambda p: Adam(p, weight_decay=float("nan")), "weight_decay"),
])
def test_bad_arguments_are_rejected(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([nn.Parameter(np.ones(2))])
