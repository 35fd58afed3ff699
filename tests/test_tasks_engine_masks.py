"""Tests of the course's tasks 1.1 and 2.1–2.4 (``pytest -m task2_1``, …).

Each task's tests hold the code between its ``# task`` and ``# end task`` lines to plain-loop
references and closed forms written here, never to other parts of the library, so no call of
another nnprune function can pass them.
"""
import math
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strategies import arrays, binary_masks, distinct_score_dicts, shapes, sparsities, tied_scores

from nnprune import Tensor
from nnprune.functional import conv as tuned_conv
from nnprune.functional import conv_plain, naive
from nnprune.functional.conv_plain import conv2d_plain_forward
from nnprune.prune.groups import group_scores
from nnprune.prune.masks import percentile_mask, ranked_prune, threshold_mask, topk_mask
from nnprune.prune.scope import global_topk_masks


def pruned_count(n, sparsity):
    """The project's rounding rule, restated: k = floor(s * n + 1/2)."""
    return int(math.floor(sparsity * n + 0.5))


def naive_ranking(scores, alive, protected=None):
    """Flat indices in pruning order: dead first, unprotected first, then score, then index."""
    protected = [False] * len(scores) if protected is None else list(protected)
    return sorted(range(len(scores)),
                  key=lambda i: (bool(alive[i]), bool(protected[i]), float(scores[i]), i))

# ---------------------------------------------------------------- 1.1 Tensor multiplication


@pytest.mark.task1_1
def test_x_times_x_accumulates_both_paths():
    """d(x·x)/dx = 2x: the two uses of x both send their gradient back, summed."""
    x = Tensor([1.5, -2.0, 0.25], requires_grad=True, dtype=np.float64)
    (x * x).sum().backward()
    assert np.array_equal(x.grad, [3.0, -4.0, 0.5])


@pytest.mark.task1_1
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), st.integers(0, 99))
def test_mul_backward_matches_the_sum_over_broadcast_axes(shapes_, seed):
    """da[i] = Σ dout·b over every output entry a[i] reached (broadcast axes summed), db alike."""
    (sa, sb), so = shapes_.input_shapes, shapes_.result_shape
    rng = np.random.default_rng(seed)
    a, b, dout = rng.standard_normal(sa), rng.standard_normal(sb), rng.standard_normal(so)
    ta = Tensor(a, requires_grad=True, dtype=np.float64)
    tb = Tensor(b, requires_grad=True, dtype=np.float64)
    (ta * tb).backward(dout)
    da, db = np.zeros(sa), np.zeros(sb)
    ab = np.broadcast_to(a, so), np.broadcast_to(b, so)
    ia = np.broadcast_to(np.arange(a.size).reshape(sa), so)  # which entry of a each output read
    ib = np.broadcast_to(np.arange(b.size).reshape(sb), so)
    for idx in np.ndindex(so):
        da.flat[ia[idx]] += dout[idx] * ab[1][idx]
        db.flat[ib[idx]] += dout[idx] * ab[0][idx]
    assert ta.grad.shape == sa and tb.grad.shape == sb
    assert np.allclose(ta.grad, da) and np.allclose(tb.grad, db)

# ---------------------------------------------------------------- 1.2 im2col convolution


@contextmanager
def no_other_convolution():
    """The library's other convolutions raise while task 1.2 runs: it is written, not
    borrowed (also where the task's module imported them by name)."""
    def refuse(*args, **kwargs):
        raise AssertionError("task 1.2 is the convolution itself: do not call another one")

    with pytest.MonkeyPatch.context() as mp:
        for name, value in list(vars(conv_plain).items()):
            if value is tuned_conv.conv2d_forward or value is naive.conv2d_naive_forward:
                mp.setattr(conv_plain, name, refuse)
        mp.setattr(tuned_conv, "conv2d_forward", refuse)
        mp.setattr(naive, "conv2d_naive_forward", refuse)
        yield


def loops_conv(x, w, b, stride, padding, dilation):
    """out[n, f, y, z] = b[f] + Σ x_pad[n, c, y·sh + i·dh, z·sw + j·dw] · w[f, c, i, j]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for idx in np.ndindex(out.shape):
        i_n, i_f, y, z = idx
        out[idx] = b[i_f] + sum(xp[i_n, i_c, y * sh + i * dh, z * sw + j * dw] * w[i_f, i_c, i, j]
                                for i_c in range(c) for i in range(kh) for j in range(kw))
    return out


@pytest.mark.task1_2
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.tuples(st.integers(1, 2), st.integers(1, 3)),
       st.tuples(st.integers(0, 2), st.integers(0, 1)),
       st.tuples(st.integers(1, 2), st.integers(1, 2)), st.integers(0, 99))
def test_im2col_conv_matches_the_seven_loops(n, c, f, kh, kw, stride, padding, dilation, seed):
    """Non-square kernels, unequal H and W, strides, padding and dilation."""
    rng = np.random.default_rng(seed)
    h, wd = dilation[0] * (kh - 1) + 1 + rng.integers(0, 4), dilation[1] * (kw - 1) + 2
    x, w = rng.standard_normal((n, c, h, wd)), rng.standard_normal((f, c, kh, kw))
    b = rng.standard_normal(f)
    with no_other_convolution():
        got, _ = conv2d_plain_forward(x, w, b, stride, padding, dilation)
    want = loops_conv(x, w, b, stride, padding, dilation)
    assert got.shape == want.shape
    assert np.allclose(got, want)


@pytest.mark.task1_2
def test_im2col_conv_example_and_no_bias():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.arange(2 * 3 * 1 * 2, dtype=float).reshape(2, 3, 1, 2)
    x2 = np.random.default_rng(0).standard_normal((2, 3, 3, 4))
    with no_other_convolution():
        out, _ = conv2d_plain_forward(x, np.ones((1, 1, 2, 2)), np.array([0.5]), stride=2)
        no_bias, _ = conv2d_plain_forward(x2, w)
    assert np.array_equal(out[0, 0], [[10.5, 18.5], [42.5, 50.5]])
    assert np.allclose(no_bias, loops_conv(x2, w, np.zeros(2), (1, 1), (0, 0), (1, 1)))


@pytest.mark.kernels
def test_borrowing_another_convolution_is_refused():
    """The guard itself: inside it, the tuned kernel cannot be called."""
    with no_other_convolution(), pytest.raises(AssertionError, match="task 1.2"):
        tuned_conv.conv2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)))

# ---------------------------------------------------------------- 2.1 exact top-k


@pytest.mark.task2_1
@given(shapes(max_dims=3), sparsities, st.data())
def test_topk_prunes_exactly_the_naive_ranking(shape, sparsity, data):
    """The k = ⌊s·n + ½⌋ lowest scores go, ties by flat index, dead entries first."""
    scores = data.draw(tied_scores(shape))
    old = data.draw(binary_masks(shape))
    mask = topk_mask(scores, sparsity, old)
    n = scores.size
    order = naive_ranking(scores.ravel(), old.ravel() != 0)
    dead = int((old == 0).sum())
    expected = np.ones(n)
    expected[order[:max(pruned_count(n, sparsity), dead)]] = 0.0
    assert np.array_equal(mask.ravel(), expected)
    assert np.all(mask <= old)  # never revived


@pytest.mark.task2_1
@given(st.integers(1, 12), st.integers(0, 12), st.data())
def test_ranked_prune_never_prunes_a_protected_survivor(n, k, data):
    """Protected alive entries are never pruned; otherwise the naive order decides."""
    scores = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), float)
    alive = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    protected = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    pruned = ranked_prune(scores, alive, min(k, n), protected)
    order = naive_ranking(scores, alive, protected)
    limit = n - int((protected & alive).sum())
    expected = np.zeros(n, bool)
    expected[order[:min(max(min(k, n), int((~alive).sum())), limit)]] = True
    assert np.array_equal(pruned, expected)
    assert not np.any(pruned & protected & alive)


@pytest.mark.task2_1
def test_topk_example_ties_by_index():
    scores = np.array([[3.0, 1.0], [2.0, 1.0]])
    assert np.array_equal(topk_mask(scores, 0.25), [[1.0, 0.0], [1.0, 1.0]])
    assert np.array_equal(topk_mask(scores, 0.5), [[1.0, 0.0], [1.0, 0.0]])
    assert np.array_equal(topk_mask(scores, 1.0), np.zeros((2, 2)))

# ---------------------------------------------------------------- 2.2 percentile mask


def naive_percentile(values, q):
    """NumPy's default ("linear") percentile, by hand: interpolate at rank (n − 1)·q/100."""
    v = sorted(float(x) for x in values)
    rank = (len(v) - 1) * q / 100.0
    lo = int(math.floor(rank))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (rank - lo) * (v[hi] - v[lo])


@pytest.mark.task2_2
@given(shapes(max_dims=3), st.floats(0, 100), st.data())
def test_percentile_mask_keeps_what_is_above_the_percentile(shape, q, data):
    """Kept ⇔ score > t (t the q-th percentile of all scores) and kept before."""
    scores = data.draw(arrays(shape, low=-2, high=2))
    old = data.draw(binary_masks(shape))
    t = naive_percentile(scores.ravel(), q)
    mask = percentile_mask(scores, q, old)
    clear = np.abs(scores - t) > 1e-9 * (1 + abs(t))  # away from rounding at the threshold
    assert np.array_equal(mask[clear], ((scores > t) * old)[clear])
    assert np.all(mask <= old)


@pytest.mark.task2_2
def test_percentile_prunes_every_tie_of_the_threshold():
    assert np.array_equal(percentile_mask(np.array([1.0, 1.0, 1.0, 2.0]), 25), [0, 0, 0, 1])
    assert np.array_equal(percentile_mask(np.array([3.0, 1.0, 2.0]), 0), [1, 0, 1])
    assert np.array_equal(percentile_mask(np.array([3.0, 1.0, 2.0]), 50), [1, 0, 0])


@pytest.mark.task2_2
@given(arrays(shapes(max_dims=2)), st.floats(-3, 3))
def test_threshold_mask_prunes_at_and_below_the_threshold(scores, t):
    mask = threshold_mask(scores, t)
    for idx in np.ndindex(scores.shape):
        assert mask[idx] == (1.0 if scores[idx] > t else 0.0)

# ---------------------------------------------------------------- 2.3 global top-k


def naive_global(scores, olds, sparsity, min_keep):
    """One ranking over all entries in order, each layer's min_keep best survivors protected."""
    flat, alive, protected, owner = [], [], [], []
    for name, s in scores.items():
        own_alive = (olds[name] != 0).ravel()
        own = naive_ranking(s.ravel(), own_alive)
        best = set(own[len(own) - min(min_keep, int(own_alive.sum())):])
        for i, value in enumerate(s.ravel()):
            flat.append(value * olds[name].ravel()[i])
            alive.append(own_alive[i])
            protected.append(i in best)
            owner.append((name, i))
    n = len(flat)
    order = naive_ranking(flat, alive, protected)
    limit = n - sum(a and p for a, p in zip(alive, protected))
    dead = n - sum(alive)
    out = {name: np.ones(s.size) for name, s in scores.items()}
    for j in order[:min(max(pruned_count(n, sparsity), dead), limit)]:
        name, i = owner[j]
        out[name][i] = 0.0
    return {name: m.reshape(scores[name].shape) for name, m in out.items()}


@pytest.mark.task2_3
@given(distinct_score_dicts(max_layers=3, max_side=4), sparsities, st.integers(0, 2), st.data())
def test_global_topk_is_one_ranking_across_layers(scores, sparsity, min_keep, data):
    olds = {name: data.draw(binary_masks(s.shape)) for name, s in scores.items()}
    masks, _ = global_topk_masks(scores, sparsity, olds, min_keep=min_keep)
    expected = naive_global(scores, olds, sparsity, min_keep)
    for name in scores:
        assert np.array_equal(masks[name], expected[name] * olds[name]), name


@pytest.mark.task2_3
@given(distinct_score_dicts(min_layers=2, max_layers=3, max_side=4), sparsities)
def test_global_topk_without_protection_is_one_threshold(scores, sparsity):
    """With min_keep=0 and distinct scores, kept ⇔ score above the k-th lowest of them all."""
    masks, _ = global_topk_masks(scores, sparsity, min_keep=0)
    everything = np.sort(np.concatenate([s.ravel() for s in scores.values()]))
    k = pruned_count(everything.size, sparsity)
    cut = everything[k - 1] if k else -np.inf
    for name, s in scores.items():
        assert np.array_equal(masks[name], (s > cut).astype(float))


@pytest.mark.task2_3
def test_global_topk_never_empties_a_layer():
    scores = {"fc1": np.array([0.1, 0.2, 0.3, 0.4]), "fc2": np.array([5.0, 6.0])}
    masks, _ = global_topk_masks(scores, 1.0)
    assert masks["fc1"].tolist() == [0, 0, 0, 1] and masks["fc2"].tolist() == [0, 1]

# ---------------------------------------------------------------- 2.4 group scores


@pytest.mark.task2_4
@given(st.sampled_from([(3, 2, 2, 3), (2, 3, 1, 2), (4, 3), (1, 5)]),
       st.sampled_from(["filter", "neuron", "channel", "kernel"]),
       st.sampled_from(["l1", "l2"]), st.integers(0, 99))
def test_group_scores_match_a_loop_over_each_group(shape, granularity, reduce, seed):
    if granularity == "kernel" and len(shape) != 4:
        return
    w = np.random.default_rng(seed).standard_normal(shape)
    got = group_scores(w, granularity, reduce)
    if granularity in ("filter", "neuron"):
        groups = {(o,): [w[(o,) + r] for r in np.ndindex(shape[1:])] for o in range(shape[0])}
    elif granularity == "channel":
        groups = {(c,): [w[idx] for idx in np.ndindex(shape) if idx[1] == c]
                  for c in range(shape[1])}
    else:
        groups = {(o, c): [w[o, c, i, j] for i in range(shape[2]) for j in range(shape[3])]
                  for o in range(shape[0]) for c in range(shape[1])}
    for key, values in groups.items():
        want = (sum(abs(v) for v in values) if reduce == "l1"
                else math.sqrt(sum(v * v for v in values)))
        assert math.isclose(got[key], want, rel_tol=1e-12), (granularity, reduce, key)
    assert got.shape == tuple(max(k[i] for k in groups) + 1 for i in range(len(next(iter(groups)))))
