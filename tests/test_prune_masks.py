"""Masks on one tensor: the rounding rule, exact top-k, ties, composition, threshold and
percentile rules, dtypes and bad input."""
import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.prune import masks as masks_module
from nnprune.prune import check_mask, percentile_mask, prune_count, threshold_mask, topk_mask
from strategies import arrays, binary_masks, distinct_scores, shapes, sparsities, tied_scores

pytestmark = pytest.mark.masks


def zeros(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask == 0))


# ------------------------------------------------------------------ the rounding rule

@given(st.integers(0, 10_000), sparsities)
def test_prune_count_is_floor_of_s_n_plus_half(n, sparsity):
    """k = ⌊s·n + ½⌋, an int in [0, n], the nearest integer to s·n (halves round up)."""
    k = prune_count(n, sparsity)
    assert isinstance(k, int) and 0 <= k <= n
    assert k == math.floor(sparsity * n + 0.5)
    assert abs(k - sparsity * n) <= 0.5 + 1e-9


@given(st.integers(0, 1000), sparsities, sparsities)
def test_prune_count_is_monotone_in_sparsity(n, s1, s2):
    """A higher sparsity never prunes fewer entries."""
    lo, hi = sorted((s1, s2))
    assert prune_count(n, lo) <= prune_count(n, hi)


def test_prune_count_rounds_halves_up():
    """0.25·10 = 2.5 -> 3 and 0.5·3 = 1.5 -> 2 (half up, not to even); the ends are 0 and n."""
    assert prune_count(10, 0.25) == 3
    assert prune_count(3, 0.5) == 2
    assert prune_count(4, 0.5) == 2
    assert (prune_count(7, 0.0), prune_count(7, 1.0), prune_count(0, 0.7)) == (0, 7, 0)


# ------------------------------------------------------------------ top-k

@given(shapes().flatmap(tied_scores), sparsities)
def test_topk_prunes_exactly_k_of_the_lowest_scores(scores, sparsity):
    """Exactly k = ⌊s·n + ½⌋ zeros, even with many ties, and every pruned score ≤ every kept
    one; the mask has the scores' shape and holds only 0.0 and 1.0."""
    mask = topk_mask(scores, sparsity)
    k = prune_count(scores.size, sparsity)
    assert mask.shape == scores.shape and mask.dtype == np.float64
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert zeros(mask) == k
    if 0 < k < scores.size:
        assert scores[mask == 0].max() <= scores[mask == 1].min()


@given(shapes().flatmap(tied_scores), sparsities)
def test_ties_are_broken_by_flat_index(scores, sparsity):
    """Among equal scores the lower flat index is pruned first: within every tied value, the
    pruned entries come before the kept ones in flat order."""
    mask = topk_mask(scores, sparsity).ravel()
    flat = scores.ravel()
    for value in np.unique(flat):
        tied = mask[flat == value]  # in flat-index order
        assert np.all(np.diff(tied) >= 0), "a kept entry precedes a pruned tie"


def test_ties_by_flat_index_hand_built():
    """Four tied 0.5s, k = ⌊0.5·6 + ½⌋ = 3: the three with the lowest flat index go."""
    scores = np.array([[1.0, 0.5, 0.5], [0.5, 2.0, 0.5]])
    assert topk_mask(scores, 0.5).tolist() == [[1, 0, 0], [0, 1, 1]]


@given(shapes().flatmap(distinct_scores), sparsities)
def test_topk_is_a_threshold_when_there_are_no_ties(scores, sparsity):
    """Without ties, top-k == ``scores > t`` with t the k-th smallest score."""
    k = prune_count(scores.size, sparsity)
    t = np.sort(scores.ravel())[k - 1] if k else -np.inf
    assert np.array_equal(topk_mask(scores, sparsity), (scores > t).astype(float))


@given(shapes().flatmap(tied_scores), sparsities)
def test_pruning_twice_at_the_same_sparsity_changes_nothing(scores, sparsity):
    """Idempotence: topk(s, mask=topk(s)) == topk(s), ties included."""
    once = topk_mask(scores, sparsity)
    assert np.array_equal(topk_mask(scores, sparsity, once), once)


@given(shapes().flatmap(tied_scores), sparsities, sparsities)
def test_masks_are_nested(scores, s1, s2):
    """For fixed scores a higher sparsity prunes a superset (ties included)."""
    lo, hi = sorted((s1, s2))
    assert np.all(topk_mask(scores, hi) <= topk_mask(scores, lo))


@given(shapes().flatmap(lambda s: st.tuples(tied_scores(s), binary_masks(s))), sparsities)
def test_composed_masks_never_revive_and_count_existing_zeros(scores_and_old, sparsity):
    """new ≤ old everywhere; zeros = max(k, zeros already there); the extra entries pruned
    are the lowest-scoring survivors."""
    scores, old = scores_and_old
    new = topk_mask(scores, sparsity, old)
    assert np.all(new <= old)
    k = prune_count(scores.size, sparsity)
    assert zeros(new) == max(k, zeros(old))
    newly = (old == 1) & (new == 0)
    if newly.any() and (new == 1).any():
        assert scores[newly].max() <= scores[new == 1].min()


@given(shapes(), st.sampled_from([np.float32, np.float16, np.int64, np.uint8]), sparsities)
def test_mask_dtype_is_the_scores_float_dtype(shape, dtype, sparsity):
    """float scores keep their dtype in the mask; integer scores give float64."""
    scores = (np.arange(int(np.prod(shape))) % 7).reshape(shape).astype(dtype)
    expected = dtype if np.issubdtype(dtype, np.floating) else np.float64
    for mask in (topk_mask(scores, sparsity), threshold_mask(scores, 3),
                 percentile_mask(scores, 50), topk_mask(scores, sparsity, np.ones(shape, bool))):
        assert mask.dtype == expected


def test_existing_zeros_beyond_k_are_kept_pruned():
    """3 zeros already, k = 1: the result keeps all 3 (nothing revived), no new zero."""
    old = np.array([0, 0, 0, 1, 1])
    assert topk_mask(np.arange(5.0), 0.2, old).tolist() == [0, 0, 0, 1, 1]


# ------------------------------------------------------------------ threshold and percentile

@given(arrays(shapes()), st.floats(-3, 3))
def test_threshold_mask_is_the_abs_w_greater_than_t_rule(w, t):
    """threshold_mask(|w|, t) == (|w| > t): entries equal to t are pruned."""
    assert np.array_equal(threshold_mask(np.abs(w), t), (np.abs(w) > t).astype(float))


@given(shapes().flatmap(lambda s: st.tuples(arrays(s), binary_masks(s))), st.floats(-3, 3))
def test_threshold_mask_composes_with_the_existing_mask(w_and_old, t):
    """(scores > t) · old: never revives."""
    w, old = w_and_old
    assert np.array_equal(threshold_mask(w, t, old), (w > t) * old)


@given(arrays(shapes()), st.floats(0, 100))
def test_percentile_mask_agrees_with_np_percentile(scores, q):
    """kept == scores > np.percentile(scores, q), on any data."""
    expected = (scores > np.percentile(scores, q)).astype(float)
    assert np.array_equal(percentile_mask(scores, q), expected)


def test_percentile_prunes_more_than_q_on_ties():
    """Four tied minimum values: the 20th percentile is that value and all four go, while
    top-k at 0.2 prunes exactly one."""
    scores = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    assert zeros(percentile_mask(scores, 20)) == 4
    assert zeros(percentile_mask(scores, 0)) == 4
    assert zeros(topk_mask(scores, 0.2)) == 1


def test_docstring_examples():
    """The examples in the module and function docstrings run as written."""
    result = doctest.testmod(masks_module, extraglobs={"np": np})
    assert result.attempted >= 6 and result.failed == 0


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("bad, error", [
    (1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
    (True, TypeError), (np.bool_(False), TypeError), ("0.5", TypeError), (None, TypeError),
    (0.5j, TypeError), ([0.5], TypeError),
])
def test_bad_sparsity_is_rejected(bad, error):
    """Sparsity must be a real number (not bool, str, complex) in [0, 1]; the error names it."""
    with pytest.raises(error, match="sparsity"):
        topk_mask(np.ones(3), bad)
    with pytest.raises(error, match="sparsity"):
        prune_count(3, bad)


@pytest.mark.parametrize("call, error, match", [
    (lambda: topk_mask(np.array([1.0, np.nan]), 0.5), ValueError, r"scores must be finite.*nan"),
    (lambda: topk_mask(np.array([1.0, np.inf]), 0.5), ValueError, r"finite.*index \(1,\)"),
    (lambda: threshold_mask(np.array([-np.inf]), 0.5), ValueError, "finite"),
    (lambda: topk_mask(np.array(["a", "b"]), 0.5), TypeError, "scores must be a real-valued"),
    (lambda: topk_mask(np.array([True, False]), 0.5), TypeError, "scores"),
    (lambda: topk_mask(np.array([1 + 2j]), 0.5), TypeError, "scores"),
    (lambda: topk_mask(np.ones(3), 0.5, np.ones(4)), ValueError, r"mask must have.*\(3,\)"),
    (lambda: topk_mask(np.ones(3), 0.5, np.full(3, 0.5)), ValueError, "only 0 and 1.*0.5"),
    (lambda: topk_mask(np.ones(2), 0.5, np.array([1.0, np.nan])), ValueError, "only 0 and 1"),
    (lambda: topk_mask(np.ones(2), 0.5, np.array([2, 1])), ValueError, "only 0 and 1"),
    (lambda: topk_mask(np.ones(2), 0.5, np.array(["1", "0"])), TypeError, "mask"),
    (lambda: threshold_mask(np.ones(3), float("nan")), ValueError, "threshold"),
    (lambda: threshold_mask(np.ones(3), "1"), TypeError, "threshold"),
    (lambda: threshold_mask(np.ones(3), True), TypeError, "threshold"),
    (lambda: threshold_mask(np.ones(3), 0.5, np.ones((3, 1))), ValueError, "mask"),
    (lambda: percentile_mask(np.ones(3), 101), ValueError, r"q must be a percentile"),
    (lambda: percentile_mask(np.ones(3), -1), ValueError, "q"),
    (lambda: percentile_mask(np.ones(3), float("nan")), ValueError, "q"),
    (lambda: percentile_mask(np.ones(3), False), TypeError, "q"),
    (lambda: percentile_mask(np.ones(0), 50), ValueError, "empty"),
    (lambda: prune_count(-1, 0.5), ValueError, "n must be"),
    (lambda: prune_count(2.0, 0.5), ValueError, "n must be"),
    (lambda: prune_count(True, 0.5), ValueError, "n must be"),
    (lambda: check_mask(None, [2, 3]), TypeError, r"shape must be a tuple of ints"),
    (lambda: check_mask(None, (2, -1)), TypeError, r"shape must be a tuple of ints"),
    (lambda: check_mask(np.ones(2), (2.0,)), TypeError, r"shape must be a tuple of ints"),
])
def test_bad_input_is_rejected(call, error, match):
    """NaN/inf or non-numeric scores, masks of the wrong shape or with values other than 0/1,
    bad thresholds, percentiles and counts: each a clear error naming the argument."""
    with pytest.raises(error, match=match):
        call()
