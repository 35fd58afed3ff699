"""Network slimming: the L1 sub-gradient step on γ, the global |γ| threshold, the schedule."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import nn, optim, train
from nnprune.cli import main
from nnprune.experiment.workflows import slimming
from nnprune.prune import prune_count, prune_model, shrink
from nnprune.prune.slimming import bn_gammas, bn_l1_regularizer

pytestmark = pytest.mark.structured


def bn_net(widths=(3, 4), seed=0, dtype=np.float64):
    a, b = widths
    return nn.Sequential(nn.Conv2d(1, a, 3, padding=1, rng=seed, dtype=dtype),
                         nn.BatchNorm2d(a, dtype=dtype), nn.ReLU(),
                         nn.Conv2d(a, b, 3, padding=1, rng=seed + 1, dtype=dtype),
                         nn.BatchNorm2d(b, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(b * 4, 3, rng=seed + 2, dtype=dtype))


@settings(max_examples=20, deadline=None)
@given(st.floats(1e-3, 0.5), st.floats(0.01, 1.0), st.integers(0, 2**16))
def test_subgradient_step_on_gamma(strength, lr, seed):
    """One plain SGD step of train.fit with the penalty: γ ← γ − η(∂L/∂γ + λ·sign γ)."""
    rng = np.random.default_rng(seed)
    model = bn_net(seed=seed % 100)
    for g in bn_gammas(model).values():
        g.data[...] = rng.normal(size=g.shape)
    g0 = {k: g.data.copy() for k, g in bn_gammas(model).items()}
    x, y = rng.normal(size=(6, 1, 4, 4)), rng.integers(0, 3, 6)
    grads = train.gradients(model, (x, y), batch_size=6)
    train.fit(model, (x, y), optim.SGD(model.parameters(), lr=lr), 1, batch_size=6,
              regularizer=bn_l1_regularizer(strength), quiet=True)
    for name, g in bn_gammas(model).items():
        expected = g0[name] - lr * (grads[name] + strength * np.sign(g0[name]))
        np.testing.assert_allclose(g.data, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.floats(0, 1),
       st.integers(0, 2**16))
def test_global_threshold_prunes_the_rounded_count_of_smallest_gammas(widths, p, seed):
    """With distinct |γ| over N channels, k = ⌊p·N + ½⌋ channels are pruned: the smallest |γ|
    of all layers together, each layer's largest kept (min_keep = 1) — whenever k ≤ N − L."""
    rng = np.random.default_rng(seed)
    layers, c = [], 1
    for w in widths:
        layers += [nn.Conv2d(c, w, 1, rng=rng, dtype=np.float64),
                   nn.BatchNorm2d(w, dtype=np.float64), nn.ReLU()]
        c = w
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c, 2, rng=rng, dtype=np.float64))
    n, k = sum(widths), prune_count(sum(widths), p)
    size = rng.permutation(n) + 1.0  # distinct |γ|, random signs
    signs = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    starts = np.cumsum([0, *widths[:-1]])
    for start, g in zip(starts, bn_gammas(model).values()):
        g.data[...] = (size * signs)[start:start + g.size]
    prune_model(model, "bn_gamma", p, "global", "filter")
    convs = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    pruned = np.concatenate([~(conv.weight.mask != 0).reshape(conv.out_channels, -1).any(axis=1)
                             if conv.weight.mask is not None else np.zeros(conv.out_channels,
                                                                           bool)
                             for conv in convs])
    if k <= n - len(widths):
        protected = {int(s + np.argmax(size[s:s + w])) for s, w in zip(starts, widths)}
        order = [i for i in np.argsort(size, kind="stable") if i not in protected]
        assert pruned.sum() == k
        assert set(np.flatnonzero(pruned)) == set(order[:k])


def test_slimming_workflow_and_exact_shrink(digits):
    """The schedule runs end to end on the digits; its masked model shrinks exactly."""
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=0), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, rng=1),
                          nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32, 10, rng=2))
    result = slimming(model, digits, sparsity=0.5, strength=1e-3, sparse_epochs=1,
                      finetune_epochs=1)
    assert result["schedule"] == "slimming" and result["criterion"] == "bn_gamma"
    assert sum(result["dead_units"].values()) == 8  # half of the 16 hidden channels
    small, report = shrink(model, (1, 8, 8))
    x = digits.x_test[:16]
    model.eval(), small.eval()
    np.testing.assert_allclose(small(x).data, model(x).data, rtol=1e-4, atol=1e-5)
    assert train.evaluate(small, (digits.x_test, digits.y_test))["accuracy"] == \
        result["accuracy_after_finetune"]


def test_slimming_refuses_bad_input(digits):
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 10))
    with pytest.raises(ValueError, match="BatchNorm"):
        slimming(plain, digits)
    with pytest.raises(ValueError, match="strength"):
        bn_l1_regularizer(-1.0)
    with pytest.raises(ValueError, match="sparse_epochs"):
        slimming(bn_net(), digits, sparse_epochs=0)


def test_cli_slimming_schedule_with_shrink(capsys, tmp_path):
    path = tmp_path / "vgg.npz"
    assert main(["train", "--model", "vgg16", "--width", "0.0625", "--epochs", "1", "--quiet",
                 "--out", str(path)]) == 0
    status = main(["prune", str(path), "--schedule", "slimming", "--sparsity", "0.5",
                   "--sparse-epochs", "1", "--finetune-epochs", "1", "--quiet", "--shrink",
                   "--out", str(tmp_path / "s.npz"), "--json", str(tmp_path / "s.json")])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["schedule"] == "slimming" and result["strength"] == 1e-4
    assert result["accuracy_shrunk"] == result["accuracy_after_finetune"]
    status = main(["prune", str(path), "--schedule", "slimming", "--sparse-epochs", "0",
                   "--out", str(tmp_path / "x.npz")])
    assert status == 2
