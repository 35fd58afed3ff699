"""Masks over many tensors: global and layer-wise scope, min_keep, exclusions, existing masks,
granularity in one call, and the reports they return."""
import doctest

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nnprune.prune import (global_threshold_masks, global_topk_masks, layerwise_topk_masks,
                           prune_count, threshold_mask, topk_mask)
from nnprune.prune import scope as scope_module
from strategies import (binary_masks, distinct_score_dicts, group_granularities, scores_with_masks,
                        sparsities, tied_score_dicts, tied_scores)

pytestmark = pytest.mark.masks


def zeros(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask == 0))


# ------------------------------------------------------------------ global scope

@given(distinct_score_dicts(), sparsities)
def test_global_topk_is_one_threshold_across_tensors(scores, sparsity):
    """Without ties and with min_keep=0, global top-k == one scalar threshold t (the k-th
    smallest of all scores) applied to every tensor; the report says k / N."""
    flat = np.concatenate([s.ravel() for s in scores.values()])
    k = prune_count(flat.size, sparsity)
    t = np.sort(flat)[k - 1] if k else -np.inf
    masks, report = global_topk_masks(scores, sparsity, min_keep=0)
    for name, s in scores.items():
        assert np.array_equal(masks[name], (s > t).astype(float))
    assert report.zeros == k and report.sparsity == pytest.approx(k / flat.size)
    assert report.target == sparsity


@given(st.integers(2, 40), sparsities, st.data())
def test_global_is_invariant_to_how_a_tensor_is_split(n, sparsity, data):
    """Splitting one tensor into named pieces (in order) gives the same mask after
    concatenation, ties included (they break by position in the concatenation), whenever
    min_keep does not bind."""
    scores = data.draw(tied_scores((n,)))
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), min_size=1, max_size=3, unique=True)))
    pieces = {f"p{i}": part for i, part in enumerate(np.split(scores, cuts))}
    min_keep = data.draw(st.integers(0, 1))
    whole, _ = global_topk_masks({"w": scores}, sparsity, min_keep=0)
    parts, _ = global_topk_masks(pieces, sparsity, min_keep=min_keep)
    assume(min_keep == 0 or all(whole["w"][start:start + len(p)].any() for start, p in zip(
        [0] + cuts, pieces.values())))  # every piece keeps something on its own
    assert np.array_equal(np.concatenate(list(parts.values())), whole["w"])


@given(tied_score_dicts(), sparsities, st.integers(0, 3))
def test_global_never_empties_a_layer_and_meets_k_when_possible(scores, sparsity, min_keep):
    """Every tensor keeps at least min(min_keep, size) entries, its highest scores; and the
    zeros are exactly min(k, N − protected): k is met from the unprotected entries."""
    masks, report = global_topk_masks(scores, sparsity, min_keep=min_keep)
    protected = 0
    for name, m in masks.items():
        keep = min(min_keep, m.size)
        protected += keep
        assert m.sum() >= keep
        if keep:  # the protected ones are the layer's best: its own top-k keeps them too
            best = topk_mask(scores[name], 1 - keep / m.size)
            assert np.all(m >= best)
    total = sum(m.size for m in masks.values())
    assert report.zeros == min(prune_count(total, sparsity), total - protected)


def test_global_min_keep_hand_built():
    """Layer b's scores are all below a's: at 0.6 (k = 3 of 5), plain global ranking empties b;
    with min_keep=1 b keeps its best entry and a loses one more, so k = 3 is still met. At
    1.0 (k = 5) the two protected entries make k unreachable: 3 zeros, reported as 0.6."""
    scores = {"a": np.array([10.0, 11.0, 12.0]), "b": np.array([1.0, 2.0])}
    empty, _ = global_topk_masks(scores, 0.6, min_keep=0)
    assert empty["a"].tolist() == [0, 1, 1] and empty["b"].tolist() == [0, 0]
    masks, report = global_topk_masks(scores, 0.6, min_keep=1)
    assert masks["a"].tolist() == [0, 0, 1] and masks["b"].tolist() == [0, 1]
    assert report.zeros == 3
    _, report = global_topk_masks(scores, 1.0, min_keep=1)
    assert report.zeros == 3 and report.sparsity == 0.6 and report.target == 1.0


@given(scores_with_masks(), sparsities)
def test_global_with_existing_masks_never_revives_and_counts_their_zeros(scores_masks, sparsity):
    """new ≤ old per tensor; with min_keep=0 the total zeros are max(k, zeros already there)."""
    scores, old = scores_masks
    masks, report = global_topk_masks(scores, sparsity, old, min_keep=0)
    before = 0
    for name, m in masks.items():
        existing = old.get(name, np.ones_like(m))
        assert np.all(m <= existing)
        before += zeros(existing)
    total = sum(m.size for m in masks.values())
    assert report.zeros == max(prune_count(total, sparsity), before)


@given(tied_score_dicts(), sparsities, st.integers(0, 2))
def test_global_pruning_is_idempotent(scores, sparsity, min_keep):
    """Pruning again at the same sparsity with the masks just made changes nothing."""
    once, _ = global_topk_masks(scores, sparsity, min_keep=min_keep)
    twice, _ = global_topk_masks(scores, sparsity, once, min_keep=min_keep)
    assert all(np.array_equal(once[name], twice[name]) for name in scores)


@given(tied_score_dicts(min_layers=2), sparsities, st.data())
def test_exclusions_are_respected(scores, sparsity, data):
    """Excluded tensors keep their existing mask (all ones if none) and are outside k:
    the zeros of the others are k of *their* entries; the report gives both overall figures."""
    excluded = data.draw(st.lists(st.sampled_from(list(scores)), unique=True,
                                  max_size=len(scores) - 1))
    old = {name: data.draw(binary_masks(scores[name].shape)) for name in excluded[:1]}
    masks, report = global_topk_masks(scores, sparsity, old, excluded, min_keep=0)
    for name in excluded:
        assert np.array_equal(masks[name], old.get(name, np.ones(scores[name].shape)))
    pruned = [name for name in scores if name not in excluded]
    n = sum(scores[name].size for name in pruned)
    assert sum(zeros(masks[name]) for name in pruned) == prune_count(n, sparsity)
    assert report.excluded == tuple(excluded)
    all_n = sum(m.size for m in masks.values())
    assert report.sparsity_all == pytest.approx(sum(zeros(m) for m in masks.values()) / all_n)


@given(tied_score_dicts(), st.floats(-1, 3))
def test_global_threshold_is_threshold_mask_per_tensor(scores, t):
    """global_threshold_masks == threshold_mask on every tensor; the report counts them."""
    masks, report = global_threshold_masks(scores, t)
    for name, s in scores.items():
        assert np.array_equal(masks[name], threshold_mask(s, t))
    assert report.zeros == sum(zeros(m) for m in masks.values())


# ------------------------------------------------------------------ layer-wise scope

@given(scores_with_masks(), sparsities, st.data())
def test_layerwise_keeps_the_rounding_rule_per_layer(scores_masks, sparsity, data):
    """Each non-excluded tensor has max(⌊s·n + ½⌋, zeros already there) zeros and equals
    topk_mask on its own; excluded ones keep their existing mask; the report counts each."""
    scores, old = scores_masks
    excluded = data.draw(st.lists(st.sampled_from(list(scores)), unique=True))
    masks, report = layerwise_topk_masks(scores, sparsity, old, excluded)
    for name, s in scores.items():
        existing = old.get(name)
        expected = (existing if existing is not None else np.ones(s.shape)) \
            if name in excluded else topk_mask(s, sparsity, existing)
        assert np.array_equal(masks[name], expected)
        assert report.layers[name] == (s.size, zeros(expected))


def test_layerwise_sparsity_dict():
    """A dict gives each tensor its own target; absent names are left alone (and reported
    as excluded); unknown names and names both excluded and targeted are errors."""
    scores = {"a": np.arange(10.0), "b": np.arange(4.0), "c": np.arange(3.0)}
    masks, report = layerwise_topk_masks(scores, {"a": 0.3, "c": 0.5})
    assert (zeros(masks["a"]), zeros(masks["b"]), zeros(masks["c"])) == (3, 0, 2)
    assert report.excluded == ("b",) and report.target is None
    assert report.sparsity == pytest.approx(5 / 13)
    with pytest.raises(ValueError, match="unknown layer name 'z' in sparsity"):
        layerwise_topk_masks(scores, {"z": 0.3})
    with pytest.raises(ValueError, match="'a' is both excluded and given a sparsity"):
        layerwise_topk_masks(scores, {"a": 0.3}, exclude=["a"])
    with pytest.raises(ValueError, match=r"layer 'c'.*sparsity"):
        layerwise_topk_masks(scores, {"c": 1.5})


# ------------------------------------------------------------------ granularity in one call

@given(group_granularities, sparsities, st.integers(0, 2), st.integers(0, 2**16))
def test_global_over_groups_counts_groups_and_keeps_min_keep_groups(granularity, sparsity,
                                                                    min_keep, seed):
    """Global filter/channel/kernel pruning: masks constant over each group, the pruned groups
    are min(k, G − protected) of all G groups, and each tensor keeps ≥ min_keep groups."""
    rng = np.random.default_rng(seed)
    scores = {"conv": rng.random((4, 3, 2, 2)), "fc": rng.random((5, 4)) * 3}
    if granularity == "kernel":
        scores["fc"] = rng.random((2, 2, 1, 3))
    masks, report = global_topk_masks(scores, sparsity, min_keep=min_keep,
                                      granularity=granularity)
    axes = {"kernel": lambda nd: (2, 3), "filter": lambda nd: tuple(range(1, nd)),
            "neuron": lambda nd: tuple(range(1, nd)),
            "channel": lambda nd: (0,) + tuple(range(2, nd))}[granularity]
    pruned_groups, all_groups, protected = 0, 0, 0
    for name, m in masks.items():
        ax = axes(m.ndim)
        assert np.all(m.min(axis=ax) == m.max(axis=ax))
        groups = m.max(axis=ax)
        assert groups.sum() >= min(min_keep, groups.size)
        pruned_groups += zeros(groups)
        all_groups += groups.size
        protected += min(min_keep, groups.size)
    assert pruned_groups == min(prune_count(all_groups, sparsity), all_groups - protected)
    assert report.zeros == sum(zeros(m) for m in masks.values())  # counted in weights


@given(st.sampled_from(["2:4", "1:2", "3:4"]), st.integers(0, 2**16))
def test_nm_global_and_layerwise_coincide(granularity, seed):
    """With N:M every group of M is its own ranking: global == layer-wise, sparsity 1 − N/M."""
    rng = np.random.default_rng(seed)
    scores = {"conv": rng.random((2, 4, 3, 2)), "fc": rng.random((3, 8))}
    n, m = map(int, granularity.split(":"))
    glob, report = global_topk_masks(scores, None, granularity=granularity)
    layer, _ = layerwise_topk_masks(scores, 1 - n / m, granularity=granularity)
    assert all(np.array_equal(glob[k], layer[k]) for k in scores)
    assert report.sparsity == pytest.approx(1 - n / m) and report.target == 1 - n / m


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call, error, match", [
    (lambda: global_topk_masks([np.ones(2)], 0.5), TypeError, "scores must be a mapping"),
    (lambda: global_topk_masks({}, 0.5), ValueError, "scores is empty"),
    (lambda: global_topk_masks({1: np.ones(2)}, 0.5), TypeError, "str names"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, exclude=["z"]), ValueError,
     "unknown layer name 'z' in exclude"),
    (lambda: layerwise_topk_masks({"a": np.ones(2)}, 0.5, exclude="z"), ValueError,
     "unknown layer name 'z'"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, {"q": np.ones(2)}), ValueError,
     "unknown layer name 'q' in masks"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, [np.ones(2)]), TypeError, "masks"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, {"a": np.ones(3)}), ValueError,
     r"masks\['a'\] must have"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, {"a": np.full(2, 2.0)}), ValueError,
     r"masks\['a'\] must contain only 0 and 1"),
    (lambda: global_topk_masks({"a": np.array([np.nan])}, 0.5), ValueError,
     r"scores\['a'\] must be finite"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 1.5), ValueError, "sparsity"),
    (lambda: global_topk_masks({"a": np.ones(2)}, "half"), TypeError, "sparsity"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, min_keep=-1), ValueError, "min_keep"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, min_keep=True), ValueError, "min_keep"),
    (lambda: global_topk_masks({"a": np.ones(2)}, 0.5, min_keep=1.0), ValueError, "min_keep"),
    (lambda: global_topk_masks({"fc": np.ones((2, 4))}, 0.5, granularity="kernel"), ValueError,
     "layer 'fc': kernel granularity needs a 4-D"),
    (lambda: layerwise_topk_masks({"b": np.ones(3)}, 0.5, granularity="filter"), ValueError,
     "layer 'b': filter granularity needs a weight with >= 2 dims"),
    (lambda: global_topk_masks({"a": np.ones((2, 4))}, 0.3, granularity="2:4"), ValueError,
     "fixes sparsity"),
    (lambda: global_topk_masks({"a": np.ones((2, 4))}, 0.5, granularity="4:2"), ValueError,
     "N <= M"),
    (lambda: global_topk_masks({"a": np.ones((2, 4))}, 0.5, granularity="row"), ValueError,
     "granularity must be one of"),
    (lambda: global_topk_masks({"a": np.ones((2, 4))}, 0.5, granularity="filter",
                               reduce="max"), ValueError, "reduce"),
    (lambda: layerwise_topk_masks({"a": np.ones(2)}, None), TypeError, "sparsity is required"),
    (lambda: global_threshold_masks({"a": np.ones(2)}, float("nan")), ValueError, "threshold"),
    (lambda: global_threshold_masks({"a": np.ones(2)}, 0.5, exclude=["b"]), ValueError,
     "unknown layer name 'b'"),
])
def test_bad_input_is_rejected(call, error, match):
    """Bad mappings, unknown names in exclude/masks/sparsity dicts, bad masks, scores,
    sparsities, min_keep and granularities: each a clear error naming the argument or layer."""
    with pytest.raises(error, match=match):
        call()


def test_docstring_examples():
    """The examples in the module docstring run as written."""
    result = doctest.testmod(scope_module, extraglobs={"np": np})
    assert result.attempted >= 4 and result.failed == 0
