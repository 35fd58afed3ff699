"""Masks from scores: exact counts, ties, composition, scope, exclusions, granularity."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nnprune import prune
from strategies import arrays, shapes, sparsities

pytestmark = pytest.mark.masks


def distinct(shape, seed):
    """Scores with no ties: a seeded permutation of 0..n-1."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape).astype(np.float64)


@given(shapes(), sparsities, st.integers(0, 2**20))
def test_topk_prunes_exactly_k(shape, sparsity, seed):
    """Exactly k = floor(s·n + 0.5) entries are zero, and they are the lowest scores."""
    scores = np.random.default_rng(seed).integers(0, 4, shape).astype(float)  # many ties
    mask = prune.topk_mask(scores, sparsity)
    k = int(np.floor(sparsity * scores.size + 0.5))
    assert int((mask == 0).sum()) == k
    if 0 < k < scores.size:
        assert scores[mask == 0].max() <= scores[mask == 1].min()


def test_ties_are_broken_by_flat_index():
    """Among equal scores the lower flat index is pruned first."""
    scores = np.array([[1.0, 0.5, 0.5], [0.5, 2.0, 0.5]])  # four tied 0.5s, k = 3
    assert prune.topk_mask(scores, 0.5).tolist() == [[1, 0, 0], [0, 1, 1]]


@given(shapes(), sparsities, st.integers(0, 2**20))
def test_pruning_twice_at_the_same_sparsity_changes_nothing(shape, sparsity, seed):
    """Idempotence: topk(s, mask=topk(s)) == topk(s)."""
    scores = distinct(shape, seed)
    once = prune.topk_mask(scores, sparsity)
    assert np.array_equal(prune.topk_mask(scores, sparsity, once), once)


@given(shapes(), sparsities, sparsities, st.integers(0, 2**20))
def test_masks_are_nested(shape, s1, s2, seed):
    """For fixed scores a higher sparsity prunes a superset."""
    lo, hi = sorted((s1, s2))
    scores = distinct(shape, seed)
    assert np.all(prune.topk_mask(scores, hi) <= prune.topk_mask(scores, lo))


@given(shapes(), sparsities, sparsities, st.integers(0, 2**20))
def test_composed_masks_never_revive_and_count_existing_zeros(shape, s1, s2, seed):
    """new ≤ old everywhere; zeros = max(k, zeros already there)."""
    rng = np.random.default_rng(seed)
    old = prune.topk_mask(rng.random(shape), s1)
    new = prune.topk_mask(rng.random(shape), s2, old)
    assert np.all(new <= old)
    k = int(np.floor(s2 * old.size + 0.5))
    assert int((new == 0).sum()) == max(k, int((old == 0).sum()))


@given(arrays(shapes()), st.floats(-3, 3))
def test_threshold_mask_is_the_abs_w_greater_than_t_rule(w, t):
    assert np.array_equal(prune.threshold_mask(np.abs(w), t), (np.abs(w) > t).astype(float))


@given(arrays(shapes()), st.floats(0, 100))
def test_percentile_mask_agrees_with_np_percentile(scores, q):
    assert np.array_equal(prune.percentile_mask(scores, q),
                          (scores > np.percentile(scores, q)).astype(float))


def test_percentile_prunes_more_than_q_on_ties():
    scores = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    assert (prune.percentile_mask(scores, 20) == 0).sum() == 4
    assert (prune.topk_mask(scores, 0.2) == 0).sum() == 1


@st.composite
def layer_dicts(draw):
    n = draw(st.integers(1, 4))
    return {f"l{i}": draw(shapes(max_dims=3)) for i in range(n)}


@given(layer_dicts(), sparsities, st.integers(0, 2**20))
def test_global_topk_is_one_threshold_across_layers(layout, sparsity, seed):
    """Without ties (and min_keep=0), global top-k == one scalar threshold on every tensor."""
    total = sum(int(np.prod(s)) for s in layout.values())
    flat = np.random.default_rng(seed).permutation(total).astype(float)
    scores, start = {}, 0
    for name, shape in layout.items():
        n = int(np.prod(shape))
        scores[name] = flat[start:start + n].reshape(shape)
        start += n
    masks, report = prune.global_topk_masks(scores, sparsity, min_keep=0)
    k = int(np.floor(sparsity * total + 0.5))
    t = np.sort(flat)[k - 1] if k else -np.inf
    for name in scores:
        assert np.array_equal(masks[name], (scores[name] > t).astype(float))
    assert report.sparsity == pytest.approx(k / total)


@given(st.integers(2, 30), sparsities, st.integers(0, 2**20), st.data())
def test_global_is_invariant_to_how_tensors_are_split(n, sparsity, seed, data):
    """Splitting one tensor into named pieces gives the same mask, concatenated."""
    scores = distinct((n,), seed)
    cut = data.draw(st.integers(1, n - 1))
    whole, _ = prune.global_topk_masks({"w": scores}, sparsity, min_keep=0)
    parts, _ = prune.global_topk_masks({"a": scores[:cut], "b": scores[cut:]}, sparsity, min_keep=0)
    assert np.array_equal(np.concatenate([parts["a"], parts["b"]]), whole["w"])


@given(layer_dicts(), sparsities, st.integers(0, 2**20), st.integers(1, 3))
def test_global_never_empties_a_layer(layout, sparsity, seed, min_keep):
    """Each layer keeps at least min(min_keep, size) entries, even at sparsity 1."""
    rng = np.random.default_rng(seed)
    scores = {k: rng.random(s) * (1000 if i == 0 else 1) for i, (k, s) in enumerate(layout.items())}
    masks, _ = prune.global_topk_masks(scores, sparsity, min_keep=min_keep)
    for name, m in masks.items():
        assert m.sum() >= min(min_keep, m.size)


@given(layer_dicts(), sparsities, st.integers(0, 2**20))
def test_layerwise_keeps_the_rounding_rule_per_layer_and_respects_exclusions(layout, sparsity, seed):
    rng = np.random.default_rng(seed)
    scores = {k: rng.random(s) for k, s in layout.items()}
    excluded = list(scores)[:1]
    masks, report = prune.layerwise_topk_masks(scores, sparsity, exclude=excluded)
    for name, m in masks.items():
        expected = 0 if name in excluded else int(np.floor(sparsity * m.size + 0.5))
        assert int((m == 0).sum()) == expected
        assert report.layers[name] == (m.size, expected)


def test_per_layer_sparsity_dicts_and_unknown_names():
    scores = {"a": np.arange(10.0), "b": np.arange(4.0)}
    masks, _ = prune.layerwise_topk_masks(scores, {"a": 0.3})
    assert (masks["a"] == 0).sum() == 3 and (masks["b"] == 0).sum() == 0
    with pytest.raises(ValueError, match="unknown layer name 'c'"):
        prune.layerwise_topk_masks(scores, {"c": 0.3})
    with pytest.raises(ValueError, match="unknown layer name 'z'"):
        prune.global_topk_masks(scores, 0.5, exclude=["z"])


@given(st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 4), (2, 8)]), st.integers(1, 3),
       st.integers(1, 3), st.booleans(), st.integers(0, 2**20))
def test_nm_masks_keep_exactly_n_of_every_m(nm, out, groups, conv, seed):
    """Along the input axis every group of m consecutive entries keeps exactly n."""
    n, m = nm
    shape = (out, groups * m, 2, 3) if conv else (out, groups * m)
    mask = prune.nm_mask(np.random.default_rng(seed).random(shape), n, m)
    along_input = np.moveaxis(mask, 1, -1).reshape(-1, m)
    assert np.all(along_input.sum(axis=1) == n)


def test_nm_with_an_existing_mask_never_revives():
    old = np.array([[0, 0, 0, 1, 1, 1, 1, 1]], dtype=float)
    new = prune.nm_mask(np.arange(8.0)[None, :], 2, 4, old)
    assert np.all(new <= old) and new[0, :4].sum() == 1 and new[0, 4:].sum() == 2


@given(st.sampled_from(["kernel", "filter", "channel"]), sparsities, st.integers(0, 2**20))
def test_group_masks_are_constant_over_each_group(granularity, sparsity, seed):
    scores = np.random.default_rng(seed).random((4, 3, 2, 2))
    mask = prune.granularity_mask(scores, sparsity, granularity)
    axes = {"kernel": (2, 3), "filter": (1, 2, 3), "channel": (0, 2, 3)}[granularity]
    assert np.all(mask.min(axis=axes) == mask.max(axis=axes))
    groups = mask.max(axis=axes)
    assert int((groups == 0).sum()) == int(np.floor(sparsity * groups.size + 0.5))


@pytest.mark.parametrize("call, error, match", [
    (lambda: prune.topk_mask(np.ones(3), 1.5), ValueError, "sparsity"),
    (lambda: prune.topk_mask(np.ones(3), float("nan")), ValueError, "sparsity"),
    (lambda: prune.topk_mask(np.ones(3), True), TypeError, "sparsity"),
    (lambda: prune.topk_mask(np.ones(3), "0.5"), TypeError, "sparsity"),
    (lambda: prune.topk_mask(np.array([1.0, np.nan]), 0.5), ValueError, "NaN"),
    (lambda: prune.topk_mask(np.ones(3), 0.5, np.ones(4)), ValueError, "shape"),
    (lambda: prune.topk_mask(np.ones(3), 0.5, np.full(3, 0.5)), ValueError, "0 and 1"),
    (lambda: prune.percentile_mask(np.ones(3), 101), ValueError, "q"),
    (lambda: prune.threshold_mask(np.ones(3), float("nan")), ValueError, "threshold"),
    (lambda: prune.parse_granularity("3:2"), ValueError, "N <= M"),
    (lambda: prune.parse_granularity("a:b"), ValueError, "granularity"),
    (lambda: prune.parse_granularity("0:4"), ValueError, "N <= M"),
    (lambda: prune.nm_mask(np.ones((2, 6)), 2, 4), ValueError, "multiple"),
    (lambda: prune.granularity_mask(np.ones((2, 4)), 0.5, "kernel"), ValueError, "4-D"),
    (lambda: prune.granularity_mask(np.ones((2, 4)), 0.3, "2:4"), ValueError, "fixes sparsity"),
    (lambda: prune.global_topk_masks({}, 0.5), TypeError, "mapping"),
    (lambda: prune.global_topk_masks({"a": np.ones(2)}, 0.5, min_keep=-1), ValueError, "min_keep"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()
