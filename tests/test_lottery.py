"""Lottery-ticket rewinding: exact restore of survivors, pruned stay zero, the per-round rate."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.optim import SGD
from nnprune.prune.apply import model_masks, prunable_weights
from nnprune.prune.lottery import prune_round, rewind, round_sparsity, snapshot
from nnprune.prune.masks import prune_count

pytestmark = pytest.mark.lottery


def model_with_bn(seed=0, hidden=12):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, hidden, rng=rng), nn.BatchNorm1d(hidden),
                         nn.ReLU(), nn.Linear(hidden, 3, rng=rng))


def train_steps(model, steps, seed):
    """A few SGD steps on random data: moves weights, biases, γ, β and the running stats."""
    rng = np.random.default_rng(seed)
    opt = SGD(list(model.parameters()), lr=0.1, momentum=0.9)
    for _ in range(steps):
        x = rng.standard_normal((8, 1, 4, 4)).astype(np.float32)
        opt.zero_grad()
        F.cross_entropy(model(Tensor(x)), rng.integers(0, 3, 8)).backward()
        opt.step()


@settings(max_examples=20)
@given(st.floats(0.05, 0.95), st.integers(1, 4), st.integers(0, 2**16))
def test_rewind_restores_exactly_the_saved_values_on_survivors(rate, rounds, seed):
    """After train → prune → rewind: survivors equal θ_0 bit for bit, pruned entries are 0,
    and biases, BatchNorm γ, β and running statistics equal θ_0 as well."""
    model = model_with_bn(seed)
    theta0 = snapshot(model)
    for r in range(1, rounds + 1):
        train_steps(model, 3, seed + r)
        prune_round(model, rate, r)
        rewind(model, theta0)
    params = dict(model.named_parameters())
    masks = model_masks(model)
    for name, p in params.items():
        keep = masks[name] == 1 if name in masks else np.ones(p.shape, bool)
        np.testing.assert_array_equal(p.data[keep], theta0[name][keep])
        assert np.all(p.data[~keep] == 0)
        assert p.grad is None
    for name, b in model.named_buffers():
        np.testing.assert_array_equal(b, theta0[name])


def test_snapshot_is_a_copy():
    """Training after a snapshot does not change the snapshot."""
    model = model_with_bn()
    saved = snapshot(model)
    frozen = {k: v.copy() for k, v in saved.items()}
    train_steps(model, 3, 0)
    assert set(saved) == {"1.weight", "1.bias", "2.weight", "2.bias", "4.weight", "4.bias",
                          "2.running_mean", "2.running_var"}
    assert all(np.array_equal(saved[k], frozen[k]) for k in saved)
    assert not np.array_equal(saved["1.weight"], model[1].weight.data)


@given(st.floats(0.0, 1.0), st.integers(1, 6), st.integers(1, 40), st.integers(1, 40),
       st.sampled_from(["layer", "global"]))
def test_after_k_rounds_at_rate_p_the_kept_fraction_is_one_minus_p_to_the_k(
        rate, rounds, n_in, n_out, scope):
    """After round k the zeros are exactly ⌊(1 − (1 − p)^k)·n + ½⌋ per layer (layer scope) or
    over all weights (global scope, min_keep 0): the kept fraction is (1 − p)^k within ½/n,
    and each round only adds zeros."""
    model = nn.Sequential(nn.Linear(n_in, n_out, rng=1), nn.ReLU(), nn.Linear(n_out, 2, rng=2))
    sizes = {k: w.size for k, w in prunable_weights(model).items()}
    previous = {k: np.ones(s) for k, s in sizes.items()}
    for k in range(1, rounds + 1):
        report = prune_round(model, rate, k, scope=scope, min_keep=0)
        target = 1 - (1 - rate) ** k
        counts = ([report.layers[name][1] for name in sizes] if scope == "layer"
                  else [report.zeros])
        totals = list(sizes.values()) if scope == "layer" else [sum(sizes.values())]
        for zeros, n in zip(counts, totals):
            assert zeros == prune_count(n, target)
            assert abs((n - zeros) / n - (1 - rate) ** k) <= 0.5 / n + 1e-12
        for name, mask in model_masks(model).items():
            assert np.all(mask.ravel() <= previous[name])
            previous[name] = mask.ravel()


def test_round_sparsity_is_the_cumulative_target():
    assert round_sparsity(0.2, 1) == pytest.approx(0.2)
    assert round_sparsity(0.2, 3) == pytest.approx(1 - 0.8 ** 3)
    assert round_sparsity(0.0, 5) == 0.0


def test_rewind_and_rounds_reject_bad_input():
    model = model_with_bn()
    saved = snapshot(model)
    with pytest.raises(ValueError, match="missing"):
        rewind(model, {k: v for k, v in saved.items() if k != "2.running_var"})
    with pytest.raises(ValueError, match="unexpected"):
        rewind(model, {**saved, "9.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        rewind(model, {**saved, "4.bias": np.zeros(4)})
    with pytest.raises(TypeError, match="mapping"):
        rewind(model, list(saved.values()))
    with pytest.raises(TypeError, match="named_parameters"):
        snapshot("model")
    with pytest.raises(ValueError, match="round"):
        prune_round(model, 0.2, 0)
    with pytest.raises(ValueError, match="rate"):
        prune_round(model, 1.2, 1)
    with pytest.raises(ValueError, match="unknown criterion"):
        prune_round(model, 0.2, 1, criterion="luck")
