"""Tests of the course's tasks 3.1–3.3 and 4.1 (``pytest -m task3_1``, …).

Closed forms, exact losses of small quadratics and counting loops written here: nothing in
them calls another part of the library, so only the task's own code can pass them.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import nn
from nnprune.count import count
from nnprune.count.rules import conv_output_size
from nnprune.prune.hessian import obd_saliency, obs_update
from nnprune.prune.schedules import polynomial_sparsity
from strategies import zhu_gupta_schedules

# ---------------------------------------------------------------- 3.1 Zhu–Gupta schedule

@pytest.mark.task3_1
@given(zhu_gupta_schedules)
def test_schedule_at_every_update_step_is_the_closed_form(schedule):
    """s(t0 + jΔt) = s_f + (s_i − s_f)(1 − j/n)^p, and s_i before t0, s_f from t0 + nΔt on."""
    s_i, s_f, t0, n, dt, power = schedule
    for j in range(n + 1):
        want = s_f + (s_i - s_f) * (1 - j / n) ** power
        got = polynomial_sparsity(t0 + j * dt, s_i, s_f, t0, n, dt, power)
        assert math.isclose(got, want, abs_tol=1e-12), (j, got, want)
    assert polynomial_sparsity(0, s_i, s_f, t0, n, dt, power) == s_i
    assert polynomial_sparsity(t0 + n * dt + 7, s_i, s_f, t0, n, dt, power) == s_f


@pytest.mark.task3_1
@given(zhu_gupta_schedules)
def test_schedule_holds_between_updates_and_never_falls(schedule):
    s_i, s_f, t0, n, dt, power = schedule
    values = [polynomial_sparsity(t, s_i, s_f, t0, n, dt, power)
              for t in range(t0 + n * dt + 3)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    for t in range(t0 + 1, t0 + n * dt):
        last_update = t0 + ((t - t0) // dt) * dt
        assert values[t] == values[last_update]
    if power >= 1:  # the cubic prunes fast early, slowly late
        steps = [values[t0 + j * dt] for j in range(n + 1)]
        rises = [b - a for a, b in zip(steps, steps[1:])]
        assert all(r2 <= r1 + 1e-12 for r1, r2 in zip(rises, rises[1:]))

# ---------------------------------------------------------------- 3.2 OBD


@pytest.mark.task3_2
@given(st.integers(1, 6), st.integers(0, 99))
def test_obd_saliency_is_the_loss_increase_of_deleting_each_weight(n, seed):
    """On L(v) = ½ Σ h_kk (v_k − w_k)² (minimum at w, diagonal Hessian), zeroing w_k alone
    raises L by exactly ½ h_kk w_k²: OBD's saliency is exact there."""
    rng = np.random.default_rng(seed)
    w, h = rng.standard_normal((2, n)), rng.uniform(0.1, 3.0, (2, n))

    def loss(v):
        return 0.5 * float(np.sum(h * (v - w) ** 2))

    saliency = obd_saliency(w, h)
    assert saliency.shape == w.shape
    for idx in np.ndindex(w.shape):
        v = w.copy()
        v[idx] = 0.0
        assert math.isclose(saliency[idx], loss(v) - loss(w), rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.task3_2
def test_obd_example():
    assert np.array_equal(obd_saliency(np.array([1.0, -2.0]), np.array([4.0, 1.0])), [2.0, 2.0])

# ---------------------------------------------------------------- 3.3 OBS


def positive_definite(n, rng):
    a = rng.standard_normal((n, n))
    return a @ a.T + 0.5 * np.eye(n)


@pytest.mark.task3_3
@given(st.integers(2, 6), st.integers(0, 99), st.data())
def test_obs_update_is_the_best_move_with_w_q_deleted(n, seed, data):
    """On L(v) = ½ (v − w)ᵀ H (v − w), the OBS step is the minimum of L with v_q = 0: the
    others solve H_FF (v_F − w_F) = H_Fq w_q, and the loss it reports is L at that point."""
    rng = np.random.default_rng(seed)
    h, w = positive_definite(n, rng), rng.standard_normal(n)
    q = data.draw(st.integers(0, n - 1))
    new, loss_increase = obs_update(w, np.linalg.inv(h), q)
    free = [i for i in range(n) if i != q]
    want = np.zeros(n)
    want[free] = w[free] + np.linalg.solve(h[np.ix_(free, free)], h[free, q] * w[q])
    assert new[q] == 0.0
    assert np.allclose(new, want, atol=1e-8)
    delta = new - w
    assert math.isclose(loss_increase, 0.5 * delta @ h @ delta, rel_tol=1e-7, abs_tol=1e-10)


@pytest.mark.task3_3
def test_obs_update_with_a_diagonal_hessian_moves_nothing_else():
    """With H diagonal the weights do not interact: only w_q changes, L = ½ h_qq w_q²."""
    w, h = np.array([1.0, -2.0, 3.0]), np.diag([2.0, 1.0, 4.0])
    new, loss_increase = obs_update(w, np.linalg.inv(h), 1)
    assert np.array_equal(new, [1.0, 0.0, 3.0]) and math.isclose(loss_increase, 2.0)

# ---------------------------------------------------------------- 4.1 MAC counting


def window_positions(size, kernel, stride, padding, dilation):
    """How many places a dilated kernel fits in a padded row: counted one by one."""
    span = dilation * (kernel - 1) + 1
    return sum(1 for start in range(0, size + 2 * padding, stride)
               if start + span <= size + 2 * padding)


@pytest.mark.task4_1
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 2))
def test_conv_output_size_counts_the_window_positions(size, kernel, stride, padding, dilation):
    want = window_positions(size, kernel, stride, padding, dilation)
    if want >= 1:
        assert conv_output_size(size, kernel, stride, padding, dilation) == want


@pytest.mark.task4_1
@given(st.integers(1, 3), st.integers(1, 4), st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.tuples(st.integers(1, 2), st.integers(1, 3)), st.tuples(st.integers(0, 1),
                                                                  st.integers(0, 2)),
       st.integers(0, 99))
def test_macs_of_a_conv_and_a_linear_layer(c, f, kernel, stride, padding, seed):
    """Dense MACs: every weight once per output position it touches (conv: OH·OW times,
    linear: once); effective MACs count only non-zero weights; biases are not counted."""
    h, w = 9, 8
    oh = window_positions(h, kernel[0], stride[0], padding[0], 1)
    ow = window_positions(w, kernel[1], stride[1], padding[1], 1)
    conv = nn.Conv2d(c, f, kernel, stride=stride, padding=padding, rng=seed)
    fc = nn.Linear(f * oh * ow, 3, rng=seed)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)
    zeroed = np.random.default_rng(seed).random(conv.weight.shape) < 0.5
    conv.weight.data[zeroed] = 0.0
    report = count(model, (c, h, w))
    conv_macs = f * c * kernel[0] * kernel[1] * oh * ow
    assert report.layers[0].output_shape == (f, oh, ow)
    assert report.macs == conv_macs + f * oh * ow * 3
    assert report.layers[0].macs == conv_macs
    assert report.layers[0].effective_macs == int((~zeroed).sum()) * oh * ow

# ---------------------------------------------------------------- 4.2 surgery


def silence(model, layer, drop, norm=None):
    """The units ``drop`` of ``layer`` output exactly 0: weight rows, biases, BN γ, β, mean 0."""
    model[layer].weight.data[drop] = 0.0
    model[layer].bias.data[drop] = 0.0
    if norm is not None:
        for array in (model[norm].weight.data, model[norm].bias.data, model[norm].running_mean):
            array[drop] = 0.0


@pytest.mark.task4_2
@given(st.integers(2, 5), st.integers(0, 99), st.data())
def test_removed_filters_leave_a_smaller_model_computing_the_same(filters, seed, data):
    """Conv → ReLU → Conv: the shrunk conv keeps rows ``keep`` of its weight, the next conv
    keeps those input channels, and the outputs equal the silenced model's."""
    from nnprune.prune.surgery import remove_filters

    keep = sorted(data.draw(st.sets(st.integers(0, filters - 1), min_size=1)))
    drop = [f for f in range(filters) if f not in keep]
    model = nn.Sequential(nn.Conv2d(2, filters, (3, 2), padding=(1, 0), rng=seed), nn.ReLU(),
                          nn.Conv2d(filters, 3, 2, stride=(1, 2), rng=seed + 1)).eval()
    silence(model, 0, drop)
    small = remove_filters(model, 0, keep, fold=False).eval()
    assert small[0].weight.shape == (len(keep), 2, 3, 2) and small[2].weight.shape[1] == len(keep)
    assert np.array_equal(small[0].weight.data, model[0].weight.data[keep])
    assert np.array_equal(small[2].weight.data, model[2].weight.data[:, keep])
    x = np.random.default_rng(seed).standard_normal((2, 2, 5, 6)).astype(np.float32)
    assert np.allclose(small(x).data, model(x).data, atol=1e-5)


@pytest.mark.task4_2
@given(st.integers(0, 99), st.data())
def test_removed_filters_take_their_flattened_columns_of_the_linear_along(seed, data):
    """Conv (4 filters, 2×3 maps) → Flatten → Linear: filter c owns columns c·6 … c·6 + 5."""
    from nnprune.prune.surgery import remove_filters

    keep = sorted(data.draw(st.sets(st.integers(0, 3), min_size=1)))
    model = nn.Sequential(nn.Conv2d(1, 4, 2, rng=seed), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 2 * 3, 5, rng=seed)).eval()
    silence(model, 0, [f for f in range(4) if f not in keep])
    small = remove_filters(model, 0, keep, fold=False).eval()
    columns = [c * 6 + p for c in keep for p in range(6)]
    assert np.array_equal(small[3].weight.data, model[3].weight.data[:, columns])
    x = np.random.default_rng(seed).standard_normal((3, 1, 3, 4)).astype(np.float32)
    assert np.allclose(small(x).data, model(x).data, atol=1e-5)


@pytest.mark.task4_2
def test_removed_neurons_shrink_the_batch_norm_between():
    from nnprune.prune.surgery import remove_neurons

    model = nn.Sequential(nn.Linear(6, 5, rng=0), nn.BatchNorm1d(5), nn.ReLU(),
                          nn.Linear(5, 3, rng=1)).eval()
    model[1].running_var[:] = np.arange(1.0, 6.0)
    silence(model, 0, [1, 3], norm=1)
    small = remove_neurons(model, 0, [0, 2, 4], fold=False).eval()
    assert small[1].num_features == 3 and small[3].weight.shape == (3, 3)
    assert np.array_equal(small[1].running_var, [1.0, 3.0, 5.0])
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    assert np.allclose(small(x).data, model(x).data, atol=1e-5)
