"""How a sparsity becomes a count: nnprune's round half up and PyTorch's round half to even
(``rounding="half_even"``), through every function that counts, and against
``torch.nn.utils.prune`` where PyTorch is installed."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import nn
from nnprune.prune import (ROUNDINGS, global_topk_masks, layerwise_topk_masks, prune_count,
                           prune_model, topk_mask)
from strategies import distinct_scores, shapes, sparsities

pytestmark = pytest.mark.masks


def zeros(mask):
    return int(np.count_nonzero(mask == 0))


@given(st.integers(0, 10_000), sparsities)
def test_half_even_is_pythons_round_and_differs_only_on_even_halves(n, sparsity):
    """half_even: k = round(s·n) (ties to even); it differs from ⌊s·n + ½⌋ by exactly one,
    and only when s·n is a half with an even integer part."""
    half_up, half_even = prune_count(n, sparsity), prune_count(n, sparsity, "half_even")
    assert half_even == round(sparsity * n) and 0 <= half_even <= n
    product = sparsity * n
    is_even_half = product - math.floor(product) == 0.5 and math.floor(product) % 2 == 0
    assert half_up - half_even == (1 if is_even_half else 0)


def test_the_documented_examples():
    """0.25 of 10: 3 against 2; 0.5 of 5: 3 against 2; 0.75 of 10 (7.5): 8 both; 0.35 of 10
    is 3.5000000000000004 in floating point, so 4 both."""
    assert (prune_count(10, 0.25), prune_count(10, 0.25, "half_even")) == (3, 2)
    assert (prune_count(5, 0.5), prune_count(5, 0.5, "half_even")) == (3, 2)
    assert (prune_count(10, 0.75), prune_count(10, 0.75, "half_even")) == (8, 8)
    assert (prune_count(10, 0.35), prune_count(10, 0.35, "half_even")) == (4, 4)


@given(st.data())
def test_topk_mask_prunes_the_count_of_its_rounding(data):
    """Exactly prune_count(n, s, rounding) zeros, the lowest scores, for both roundings."""
    shape = data.draw(shapes())
    scores = data.draw(distinct_scores(shape))
    sparsity = data.draw(sparsities)
    for rounding in ROUNDINGS:
        mask = topk_mask(scores, sparsity, rounding=rounding)
        k = prune_count(scores.size, sparsity, rounding)
        assert zeros(mask) == k
        assert np.array_equal(np.sort(scores[mask == 0]), np.sort(scores.ravel())[:k])


def test_scope_functions_and_prune_model_pass_the_rounding_on():
    """0.25 of a 2×5 weight: 3 zeros by default, 2 with half_even, in every entry point."""
    scores = {"a": np.arange(1.0, 11.0).reshape(2, 5)}
    for rounding, k in (("half_up", 3), ("half_even", 2)):
        masks, _ = layerwise_topk_masks(scores, 0.25, rounding=rounding)
        assert zeros(masks["a"]) == k
        masks, _ = global_topk_masks(scores, 0.25, min_keep=0, rounding=rounding)
        assert zeros(masks["a"]) == k
        masks, _ = layerwise_topk_masks(scores, 0.25, granularity="neuron", rounding=rounding)
        assert zeros(masks["a"]) == (5 if rounding == "half_up" else 0)  # 0.25 of 2 rows
        for scope in ("layer", "global"):
            model = nn.Sequential(nn.Linear(5, 2, rng=0), nn.ReLU(), nn.Linear(2, 2, rng=1))
            prune_model(model, "magnitude", 0.25, scope=scope, exclude=["2.weight"],
                        min_keep=0, rounding=rounding)
            assert zeros(model[0].weight.mask) == k


@pytest.mark.parametrize("call", [
    lambda r: prune_count(10, 0.25, r),
    lambda r: topk_mask(np.ones(4), 0.5, rounding=r),
    lambda r: layerwise_topk_masks({"a": np.ones(4)}, 0.5, rounding=r),
    lambda r: global_topk_masks({"a": np.ones(4)}, 0.5, rounding=r),
    lambda r: prune_model(nn.Sequential(nn.Linear(2, 2, rng=0)), "magnitude", 0.5, rounding=r),
])
@pytest.mark.parametrize("bad", ["even", "half-even", None, 1])
def test_unknown_rounding_is_a_clear_error(call, bad):
    with pytest.raises(ValueError, match="rounding must be one of.*half_even"):
        call(bad)


# ------------------------------------------------------------------ against PyTorch

@given(st.data())
def test_half_even_masks_equal_torch_l1_unstructured(data):
    """With distinct |w|, topk_mask(|w|, s, rounding="half_even") is l1_unstructured's mask,
    at any sparsity; with the default rounding it differs exactly on the even halves."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils import prune as torch_prune
    shape = data.draw(shapes(min_dims=2, max_dims=4, max_side=5))
    w = data.draw(distinct_scores(shape))
    sparsity = data.draw(st.one_of(sparsities, st.sampled_from([0.25, 0.5, 0.125, 0.375])))
    layer = torch.nn.Linear(1, 1)  # any module: its weight is replaced by w
    layer.weight = torch.nn.Parameter(torch.from_numpy(w.copy()))
    torch_prune.l1_unstructured(layer, "weight", amount=sparsity)
    torch_mask = layer.weight_mask.numpy()
    np.testing.assert_array_equal(topk_mask(np.abs(w), sparsity, rounding="half_even"),
                                  torch_mask)
    ours = topk_mask(np.abs(w), sparsity)
    assert zeros(ours) - zeros(torch_mask) == (prune_count(w.size, sparsity)
                                               - prune_count(w.size, sparsity, "half_even"))


def test_prune_model_half_even_equals_torch_global_unstructured():
    """Global magnitude pruning of a 3-layer MLP: nnprune's masks (min_keep=0, half_even) are
    torch's global_unstructured L1 masks, at a sparsity where the two roundings differ."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils import prune as torch_prune
    model = nn.Sequential(nn.Linear(6, 4, rng=0, dtype=np.float64), nn.ReLU(),
                          nn.Linear(4, 3, rng=1, dtype=np.float64))
    n = sum(p.data.size for name, p in model.named_parameters() if name.endswith("weight"))
    sparsity = 2.5 / n  # s·n = 2.5: half up prunes 3, half to even 2
    torch_layers = []
    for layer in (model[0], model[2]):
        t = torch.nn.Linear(layer.in_features, layer.out_features).double()
        t.weight.data = torch.from_numpy(layer.weight.data.copy())
        torch_layers.append(t)
    torch_prune.global_unstructured([(t, "weight") for t in torch_layers],
                                    pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    prune_model(model, "magnitude", sparsity, scope="global", min_keep=0, rounding="half_even")
    for layer, t in zip((model[0], model[2]), torch_layers):
        np.testing.assert_array_equal(layer.weight.mask, t.weight_mask.numpy())
    assert sum(zeros(t.weight_mask.numpy()) for t in torch_layers) == 2
