"""Granularity: group scores against loops, group masks constant per group, group counts by the
rounding rule, existing masks, N:M patterns, and bad granularities."""
import doctest
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.prune import (expand_group_mask, granularity_mask, group_alive, group_scores,
                           groups as groups_module, nm_mask, parse_granularity, prune_count,
                           reduced_axes, topk_mask)
from strategies import (arrays, binary_masks, group_granularities, nm_patterns, sparsities,
                        tied_scores, weight_shapes)

pytestmark = pytest.mark.structured


def group_index(shape, granularity, index):
    """Which group the entry at ``index`` of a weight of ``shape`` belongs to, by definition."""
    if granularity == "kernel":
        return index[:2]
    if granularity in ("filter", "neuron"):
        return index[:1]
    return index[1:2]  # channel


@given(group_granularities, weight_shapes(), st.sampled_from(["l1", "l2"]), st.data())
def test_group_scores_match_a_loop_over_entries(granularity, shape, reduce, data):
    """S_g = Σ_{j∈g}|s_j| (l1) or √Σ_{j∈g} s_j² (l2), where g is the group an entry belongs to
    by definition (kernel: (o, i); filter/neuron: o; channel: i)."""
    if granularity == "kernel" and len(shape) != 4:
        shape = shape + (2, 1)
    scores = data.draw(arrays(shape))
    totals = {}
    for index in itertools.product(*map(range, shape)):
        key = group_index(shape, granularity, index)
        totals[key] = totals.get(key, 0.0) + (abs(scores[index]) if reduce == "l1"
                                              else scores[index] ** 2)
    got = group_scores(scores, granularity, reduce)
    for key, total in totals.items():
        expected = total if reduce == "l1" else np.sqrt(total)
        assert got[key] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert got.shape == group_index(shape, granularity, shape)  # the group axes' sides


@given(group_granularities, weight_shapes(conv=True), st.data())
def test_expand_group_mask_broadcasts_over_each_group(granularity, shape, data):
    """expand(G)[index] == G[group of index] for every entry, and group_alive inverts it."""
    group_shape = group_index(shape, granularity, shape)
    group_mask = data.draw(binary_masks(group_shape))
    mask = expand_group_mask(group_mask, shape, granularity)
    assert mask.shape == shape
    for index in itertools.product(*map(range, shape)):
        assert mask[index] == group_mask[group_index(shape, granularity, index)]
    assert np.array_equal(group_alive(mask, granularity), group_mask == 1)


@given(group_granularities, weight_shapes(conv=True), sparsities, st.data())
def test_group_masks_are_constant_over_each_group_and_count_groups(granularity, shape, sparsity,
                                                                   data):
    """Every group is all kept or all pruned; the pruned groups are ⌊s·G + ½⌋ of the G groups,
    the lowest group scores (ties by group index); the weight sparsity is their share."""
    scores = data.draw(tied_scores(shape))
    mask = granularity_mask(scores, sparsity, granularity)
    axes = reduced_axes(shape, granularity)
    assert np.array_equal(mask.min(axis=axes), mask.max(axis=axes))
    kept_groups = mask.max(axis=axes)
    assert np.array_equal(kept_groups, topk_mask(group_scores(scores, granularity), sparsity))
    pruned = prune_count(kept_groups.size, sparsity)
    assert np.count_nonzero(mask == 0) == pruned * (mask.size // kept_groups.size)


@given(group_granularities, weight_shapes(conv=True), sparsities, st.data())
def test_group_masks_never_revive_and_prune_dead_groups_first(granularity, shape, sparsity, data):
    """new ≤ old; the groups already all-zero stay pruned and count toward k; a partly pruned
    group is scored on its surviving entries only."""
    scores = data.draw(tied_scores(shape, levels=4))
    old = data.draw(binary_masks(shape))
    mask = granularity_mask(scores, sparsity, granularity, old)
    axes = reduced_axes(shape, granularity)
    assert np.all(mask <= old)
    alive_before = group_alive(old, granularity)
    alive_after = group_alive(mask, granularity)
    dead = int((~alive_before).sum())
    assert int((~alive_after).sum()) == max(prune_count(alive_before.size, sparsity), dead)
    expected = topk_mask(group_scores(scores * old, granularity), sparsity, alive_before)
    assert np.array_equal(alive_after, expected == 1)
    assert np.array_equal(mask, expand_group_mask(alive_after, shape, granularity) * old)
    assert np.array_equal(mask.max(axis=axes) > 0, alive_after)


@given(weight_shapes(), sparsities, st.data())
def test_weight_granularity_is_topk(shape, sparsity, data):
    """granularity "weight" is plain top-k on the scores."""
    scores = data.draw(tied_scores(shape))
    old = data.draw(binary_masks(shape))
    assert np.array_equal(granularity_mask(scores, sparsity, "weight", old),
                          topk_mask(scores, sparsity, old))


# ------------------------------------------------------------------ N:M

@given(nm_patterns, st.data())
def test_nm_masks_keep_exactly_n_of_every_m(nm, data):
    """Along the input axis (axis 1) every group of m consecutive entries keeps exactly n,
    the n highest scores of the group (ties: the lower index is pruned first)."""
    n, m = nm
    shape = data.draw(weight_shapes(in_multiple=m))
    scores = data.draw(tied_scores(shape))
    mask = nm_mask(scores, n, m)
    # (O, I, ...) -> (..., I): one row per position, then groups of m along it
    rows_mask = np.moveaxis(mask, 1, -1).reshape(-1, m)
    rows_scores = np.moveaxis(scores, 1, -1).reshape(-1, m)
    assert np.all(rows_mask.sum(axis=1) == n)
    for keep, s in zip(rows_mask, rows_scores):
        assert np.array_equal(keep, topk_mask(s, (m - n) / m))


def test_nm_conv_groups_run_along_input_channels():
    """Conv (O, I, kh, kw): a group is w[o, j·m:(j+1)·m, y, x]; here 2:4 with I = 4 keeps the
    two largest input channels at each (o, y, x), by a loop."""
    scores = np.random.default_rng(0).permutation(2 * 4 * 3 * 2).reshape(2, 4, 3, 2) * 1.0
    mask = nm_mask(scores, 2, 4)
    for o, y, x in itertools.product(range(2), range(3), range(2)):
        column = scores[o, :, y, x]
        assert set(np.flatnonzero(mask[o, :, y, x])) == set(np.argsort(column)[2:])


def test_nm_ties_are_broken_by_index():
    """All four scores tied: 2:4 prunes the first two positions of each group."""
    assert nm_mask(np.ones((1, 8)), 2, 4).tolist() == [[0, 0, 1, 1, 0, 0, 1, 1]]


@given(nm_patterns, st.data())
def test_nm_with_an_existing_mask_never_revives(nm, data):
    """new ≤ old; each group keeps min(n, its survivors): groups with more than m − n zeros
    keep all their zeros."""
    n, m = nm
    shape = data.draw(weight_shapes(in_multiple=m))
    scores = data.draw(tied_scores(shape))
    old = data.draw(binary_masks(shape))
    mask = nm_mask(scores, n, m, old)
    assert np.all(mask <= old)
    survivors = np.moveaxis(old, 1, -1).reshape(-1, m).sum(axis=1)
    kept = np.moveaxis(mask, 1, -1).reshape(-1, m).sum(axis=1)
    assert np.array_equal(kept, np.minimum(n, survivors))


def test_nm_sparsity_is_fixed_at_one_minus_n_over_m():
    """granularity_mask with "N:M": sparsity None or 1 − N/M is accepted; another is an error."""
    scores = np.arange(16.0).reshape(2, 8)
    expected = nm_mask(scores, 1, 4)
    assert np.array_equal(granularity_mask(scores, None, "1:4"), expected)
    assert np.array_equal(granularity_mask(scores, 0.75, "1:4"), expected)
    with pytest.raises(ValueError, match=r"fixes sparsity at 1 - 1/4 = 0.75"):
        granularity_mask(scores, 0.5, "1:4")


def test_parse_granularity():
    """Names come back as given, "N:M" strings as (N, M) ints."""
    for name in ("weight", "kernel", "filter", "channel", "neuron"):
        assert parse_granularity(name) == name
    assert parse_granularity("2:4") == (2, 4) and parse_granularity("8:8") == (8, 8)


def test_docstring_examples():
    """The examples in the module and function docstrings run as written."""
    result = doctest.testmod(groups_module, extraglobs={"np": np})
    assert result.attempted >= 5 and result.failed == 0


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("call, error, match", [
    (lambda: parse_granularity("3:2"), ValueError, "1 <= N <= M"),
    (lambda: parse_granularity("0:4"), ValueError, "1 <= N <= M"),
    (lambda: parse_granularity("a:b"), ValueError, "'N:M' string"),
    (lambda: parse_granularity("2:4:8"), ValueError, "granularity must be one of"),
    (lambda: parse_granularity(" 2:4"), ValueError, "granularity must be one of"),
    (lambda: parse_granularity("-1:4"), ValueError, "granularity must be one of"),
    (lambda: parse_granularity(""), ValueError, "granularity"),
    (lambda: parse_granularity(None), TypeError, "granularity must be a string"),
    (lambda: parse_granularity((2, 4)), TypeError, "granularity must be a string"),
    (lambda: nm_mask(np.ones((2, 6)), 2, 4), ValueError, r"I = 6.*not a multiple of m = 4"),
    (lambda: nm_mask(np.ones((2, 4)), 3, 2), ValueError, "1 <= n <= m"),
    (lambda: nm_mask(np.ones((2, 4)), 0, 4), ValueError, "1 <= n <= m"),
    (lambda: nm_mask(np.ones((2, 4)), True, 4), TypeError, "n must be an int"),
    (lambda: nm_mask(np.ones((2, 4)), 2, 4.0), TypeError, "m must be an int"),
    (lambda: nm_mask(np.ones(8), 2, 4), ValueError, ">= 2 dims"),
    (lambda: nm_mask(np.ones((2, 4)), 2, 4, np.ones((2, 5))), ValueError, "mask must have"),
    (lambda: nm_mask(np.full((2, 4), np.nan), 2, 4), ValueError, "finite"),
    (lambda: group_scores(np.ones((2, 4)), "kernel"), ValueError, "4-D conv weight"),
    (lambda: group_scores(np.ones(4), "channel"), ValueError, ">= 2 dims"),
    (lambda: group_scores(np.ones((2, 4)), "filter", "l3"), ValueError, "reduce"),
    (lambda: group_scores(np.ones((2, 4)), "2:4"), ValueError, "granularity must be one of"),
    (lambda: expand_group_mask(np.ones(3), (2, 4), "filter"), ValueError, r"shape \(2,\)"),
    (lambda: granularity_mask(np.ones((2, 4)), 0.5, "kernel"), ValueError, "4-D"),
    (lambda: granularity_mask(np.ones((2, 4)), 0.5, "2:4", np.ones(8)), ValueError, "mask"),
    (lambda: granularity_mask(np.ones((2, 4)), None, "filter"), TypeError, "required"),
    (lambda: granularity_mask(np.ones((2, 4)), 2.0, "filter"), ValueError, "sparsity"),
    (lambda: granularity_mask(np.ones((2, 4)), 0.5, "weight", reduce="sum"), ValueError, "reduce"),
])
def test_bad_input_is_rejected(call, error, match):
    """Bad N:M strings ("3:2", "a:b", "0:4", ...), shapes a granularity cannot group, bad
    n/m, reductions, group masks and sparsities: each a clear error."""
    with pytest.raises(error, match=match):
        call()
