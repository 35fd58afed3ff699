"""Masks under training: pruned weights stay exactly zero whatever the optimizer does."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.optim import SGD, Adam, AdamW
from nnprune.prune.apply import make_permanent, model_masks, prunable_weights, prune_model

pytestmark = pytest.mark.apply

OPTIMIZERS = {
    "sgd": lambda ps: SGD(ps, lr=0.05),
    "sgd-momentum-wd": lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-2),
    "sgd-nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
    "adam": lambda ps: Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: AdamW(ps, lr=1e-2, weight_decay=1e-1),
}


def real_model(seed):
    """conv → BN → ReLU → pool → conv → ReLU → flatten → fc → ReLU → fc, on (N, 2, 8, 8)."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0), rng=rng), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 4 * 2, 12, rng=rng), nn.ReLU(), nn.Linear(12, 5, rng=rng))


def batch(rng, n=16):
    return rng.standard_normal((n, 2, 8, 8)).astype(np.float32), rng.integers(0, 5, n)


def loss_of(model, x, y):
    return F.cross_entropy(model(Tensor(x)), y)


@settings(max_examples=10)
@given(st.sampled_from(sorted(OPTIMIZERS)), st.floats(0.3, 0.95),
       st.sampled_from(["layer", "global"]), st.integers(0, 2**16))
def test_masked_weights_stay_exactly_zero_under_every_optimizer(name, sparsity, scope, seed):
    """Pruning mid-training, with the optimizer's momentum / Adam moments already built up on
    the entries about to be pruned: after 30 more steps of SGD (momentum, weight decay,
    Nesterov), Adam or AdamW on random data, every pruned weight is exactly 0, the masks are
    unchanged, and the survivors did move."""
    rng = np.random.default_rng(seed)
    model = real_model(seed)
    opt = OPTIMIZERS[name](list(model.parameters()))

    def steps(n):
        for _ in range(n):
            x, y = batch(rng)
            opt.zero_grad()
            loss_of(model, x, y).backward()
            opt.step()

    steps(5)  # dense: the state buffers now hold non-zero values everywhere
    prune_model(model, "magnitude", sparsity, scope)
    masks = model_masks(model)
    start = {k: w.copy() for k, w in prunable_weights(model).items()}
    steps(30)
    weights = prunable_weights(model)
    for k, mask in masks.items():
        assert np.all(weights[k][mask == 0] == 0), f"{name}: a pruned entry of {k} moved"
        np.testing.assert_array_equal(model_masks(model)[k], mask)
    # survivors train; not necessarily in every layer: a conv filter left with one weight
    # feeds BatchNorm, which cancels that weight's scale, so its gradient is ~0 (seed 0, 0.9375)
    assert any(np.any(weights[k][mask == 1] != start[k][mask == 1])
               for k, mask in masks.items()), "no surviving weight trained"


@settings(max_examples=10)
@given(st.floats(0.2, 0.9), st.integers(0, 2**16))
@example(0.8984375, 201)
def test_gradients_of_pruned_entries_are_zero_after_backward(sparsity, seed):
    """dL/dw is exactly 0 on every pruned entry, while backward did run: some parameter has a
    non-zero gradient. Not necessarily a surviving weight: at sparsity 0.8984375, seed 201, the
    last layer's six survivors read only hidden units that are dead on the batch, so every
    surviving weight gets zero gradient and only the biases learn."""
    model = real_model(seed)
    prune_model(model, "random", sparsity, seed=seed)
    x, y = batch(np.random.default_rng(seed))
    loss_of(model, x, y).backward()
    params = dict(model.named_parameters())
    for k, mask in model_masks(model).items():
        assert np.all(params[k].grad[mask == 0] == 0), f"{k}: a pruned entry has a gradient"
    assert any(np.any(p.grad != 0) for p in params.values()), "no gradient at all"


def test_after_make_permanent_the_zeros_can_train_again():
    """Without masks an optimizer step moves the former zeros: that is what permanent means."""
    rng = np.random.default_rng(0)
    model = real_model(0)
    prune_model(model, "magnitude", 0.8)
    zeros = {k: w == 0 for k, w in prunable_weights(model).items()}
    make_permanent(model)
    opt = SGD(list(model.parameters()), lr=0.05, momentum=0.9)
    for _ in range(3):
        x, y = batch(rng)
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()
    weights = prunable_weights(model)
    assert any(np.any(weights[k][z] != 0) for k, z in zeros.items())
