"""Layer-wise OBS on arrays: the facts of OBS, OBC and SparseGPT that the code relies on."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.prune.hessian import obd_saliency, obs_prune, obs_saliency
from nnprune.prune.obc import (damp, masks_from_counts, obc_prune, obc_traces,
                               reconstruction_loss, recursive_inverse, refit_rows, select_counts)
from nnprune.prune.sparsegpt import inverse_cholesky, sparsegpt
from strategies import layer_problems

pytestmark = pytest.mark.hessian


def hessian_of(x):
    return 2 * x @ x.T / x.shape[1]


def downdate(h_inv, q):
    """H⁻¹ with weight q eliminated: H⁻¹ − H⁻¹e_q e_qᵀH⁻¹ / [H⁻¹]_qq."""
    return h_inv - np.outer(h_inv[:, q], h_inv[q, :]) / h_inv[q, q]


@given(layer_problems(max_rows=1), st.data())
def test_one_at_a_time_downdates_equal_the_group_formula_in_any_order(problem, data):
    """Deleting a set S by single OBS steps with downdates, in any order, costs
    ½ w_Sᵀ([H⁻¹]_SS)⁻¹ w_S in total and reaches w − H⁻¹[:, S]([H⁻¹]_SS)⁻¹ w_S."""
    w, x = problem
    w, h = w[0], hessian_of(x)
    d = len(w)
    s = data.draw(st.lists(st.integers(0, d - 1), min_size=1, max_size=d, unique=True))
    h_inv = np.linalg.inv(h)
    group = np.linalg.inv(h_inv[np.ix_(s, s)])
    expected_loss = 0.5 * w[s] @ group @ w[s]
    expected_w = w - h_inv[:, s] @ group @ w[s]
    current, total, inv = w.copy(), 0.0, h_inv.copy()
    for q in s:  # the order hypothesis drew
        total += 0.5 * current[q] ** 2 / inv[q, q]
        current = current - (current[q] / inv[q, q]) * inv[:, q]
        inv = downdate(inv, q)
    assert total == pytest.approx(expected_loss, rel=1e-7, abs=1e-10)
    np.testing.assert_allclose(current, expected_w, rtol=1e-7, atol=1e-8)
    assert np.all(np.abs(current[s]) < 1e-8)


@given(layer_problems(max_rows=1), st.data())
def test_downdated_inverse_restricted_to_survivors_is_the_inverse_of_restricted_h(problem,
                                                                                 data):
    """After eliminating S, H⁻¹ on the kept indices K is inv(H_KK), and 0 across S."""
    _, x = problem
    h = hessian_of(x)
    d = len(h)
    s = data.draw(st.lists(st.integers(0, d - 1), max_size=d - 1, unique=True))
    keep = [i for i in range(d) if i not in s]
    inv = np.linalg.inv(h)
    for q in s:
        inv = downdate(inv, q)
    np.testing.assert_allclose(inv[np.ix_(keep, keep)], np.linalg.inv(h[np.ix_(keep, keep)]),
                               rtol=1e-6, atol=1e-8)
    if s:
        assert np.abs(inv[:, s]).max() < 1e-8 * max(1.0, np.abs(inv).max())


@given(layer_problems(max_rows=1), st.floats(0.01, 10.0), st.randoms(use_true_random=False))
def test_sherman_morrison_from_alpha_i_is_the_inverse_in_any_sample_order(problem, alpha,
                                                                         random):
    """Hassibi & Stork's recursion from H₀ = αI gives inv(αI + (1/P) Σ x xᵀ), any order."""
    _, x = problem
    samples = list(x.T)
    random.shuffle(samples)
    expected = np.linalg.inv(alpha * np.eye(len(x)) + x @ x.T / x.shape[1])
    np.testing.assert_allclose(recursive_inverse(np.array(samples), alpha), expected,
                               rtol=1e-7, atol=1e-9)


@given(layer_problems(), st.data())
def test_layerwise_obs_is_least_squares_on_the_kept_inputs(problem, data):
    """After OBC prunes any number of steps, each row is the least-squares fit of w X on the
    kept inputs, and its predicted loss (the sum of its trace) is the rise of ‖wX − ŵX‖²/N."""
    w, x = problem
    h = hessian_of(x)
    order, losses = obc_traces(w, h, rows_per_chunk=data.draw(st.integers(1, 3)),
                               lazy=data.draw(st.integers(1, 4)))
    counts = np.array([data.draw(st.integers(0, w.shape[1])) for _ in range(len(w))])
    mask = masks_from_counts(order, counts, w.shape[1])
    new = refit_rows(w, h, mask)
    for r in range(len(w)):
        keep = mask[r] != 0
        target = w[r] @ x
        expected = np.zeros(w.shape[1])
        if keep.any():
            expected[keep] = np.linalg.lstsq(x[keep].T, target, rcond=None)[0]
        np.testing.assert_allclose(new[r], expected, rtol=1e-6, atol=1e-8)
        rise = np.sum((target - new[r] @ x) ** 2) / x.shape[1]
        assert losses[r, :counts[r]].sum() == pytest.approx(rise, rel=1e-6, abs=1e-9)
    assert reconstruction_loss(w, new, h) == pytest.approx(
        [losses[r, :counts[r]].sum() for r in range(len(w))], rel=1e-6, abs=1e-9)


@given(layer_problems(max_rows=1), st.data())
def test_obs_saliency_is_at_most_obd_with_equality_iff_the_row_is_diagonal(problem, data):
    """½ w_q²/[H⁻¹]_qq ≤ ½ h_qq w_q²: 1/[H⁻¹]_qq is the Schur complement h_qq − h_qKH_KK⁻¹h_Kq;
    equal exactly when H's row q is zero off the diagonal."""
    w, x = problem
    w, h = w[0], hessian_of(x)
    obs, obd = obs_saliency(w, np.linalg.inv(h)), obd_saliency(w, np.diag(h))
    assert np.all(obs <= obd * (1 + 1e-9) + 1e-12)
    q = data.draw(st.integers(0, len(w) - 1))
    isolated = h.copy()
    isolated[q, :] = isolated[:, q] = 0.0
    isolated[q, q] = h[q, q]
    assert obs_saliency(w, np.linalg.inv(isolated))[q] == pytest.approx(
        obd_saliency(w, np.diag(isolated))[q], rel=1e-9)
    if len(w) > 1 and np.abs(h[q][np.arange(len(w)) != q]).max() > 1e-6 and w[q] != 0:
        assert obs[q] < obd[q]


@given(layer_problems(), st.floats(0.0, 1.0))
def test_obc_on_a_layer_is_obs_prune_on_each_row(problem, sparsity):
    """OBC's rows are today's global ``obs_prune`` run on 2XXᵀ/N, each with its own count."""
    w, x = problem
    h = hessian_of(x)
    new, mask, loss = obc_prune(w, h, sparsity)
    d = w.shape[1]
    total = 0.0
    for r in range(len(w)):
        count = int(d - mask[r].sum())
        row, row_mask, row_loss = obs_prune(w[r], h, count / d)
        np.testing.assert_array_equal(row_mask, mask[r])
        np.testing.assert_allclose(row, new[r], rtol=1e-6, atol=1e-8)
        total += row_loss
    assert loss == pytest.approx(total, rel=1e-6, abs=1e-9)


@given(st.lists(st.lists(st.floats(0, 10), min_size=1, max_size=6), min_size=1, max_size=4),
       st.integers(0, 30))
def test_select_counts_takes_k_steps_as_prefixes(rows, k):
    """Exactly min(k, steps) steps are taken, and a row's steps are taken in order."""
    width = max(len(r) for r in rows)
    losses = np.full((len(rows), width), np.inf)
    for i, r in enumerate(rows):
        losses[i, :len(r)] = r
    counts = select_counts(losses, k)
    assert counts.sum() == min(k, sum(len(r) for r in rows))
    assert all(c <= len(r) for c, r in zip(counts, rows))


@given(layer_problems(max_rows=3, max_inputs=8), st.sampled_from([(1, 2), (2, 4), (1, 4)]))
def test_nm_traces_keep_n_of_every_m(problem, nm):
    """With N:M groups the traces stop when every group has lost m − n: n kept in each."""
    w, x = problem
    n, m = nm
    d = m * (w.shape[1] // m or 1)
    w, x = np.resize(w, (len(w), d)), np.resize(x, (d, d + 4)) + np.eye(d, d + 4)
    order, losses = obc_traces(w, hessian_of(x), groups=(np.arange(d) // m, m - n))
    mask = masks_from_counts(order, select_counts(losses, w.size), d)
    np.testing.assert_array_equal(mask.reshape(len(w), -1, m).sum(axis=2), n)


# ---------------------------------------------------------------------- SparseGPT
@given(layer_problems(max_rows=1))
def test_inverse_cholesky_rows_are_the_sequentially_downdated_inverse(problem):
    """H⁻¹ = UᵀU: row i of U is row i of H⁻¹ with 0..i−1 eliminated, over √(its diagonal)."""
    _, x = problem
    h = hessian_of(x)
    u = inverse_cholesky(h)
    np.testing.assert_allclose(u.T @ u, np.linalg.inv(h), rtol=1e-7, atol=1e-9)
    inv = np.linalg.inv(h)
    for i in range(len(h)):
        np.testing.assert_allclose(u[i, i:], inv[i, i:] / np.sqrt(inv[i, i]), rtol=1e-6,
                                   atol=1e-8)
        inv = downdate(inv, i)


@given(layer_problems(), st.integers(1, 4))
def test_sparsegpt_with_an_empty_mask_returns_w(problem, blocksize):
    """Nothing pruned: every error is 0 and W comes back unchanged."""
    w, x = problem
    new, mask = sparsegpt(w, hessian_of(x), mask=np.ones(w.shape), blocksize=blocksize)
    np.testing.assert_allclose(new, w, rtol=1e-12, atol=1e-12)
    assert mask.all()


@given(layer_problems(), st.data())
def test_sparsegpt_loss_is_at_least_least_squares_and_equal_for_a_prefix(problem, data):
    """For any mask SparseGPT's loss ≥ the exact masked least squares; pruning a prefix of
    the columns, it is that least-squares solution."""
    w, x = problem
    h = hessian_of(x)
    d = w.shape[1]
    mask = np.array(data.draw(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=d,
                                                max_size=d), min_size=len(w),
                                       max_size=len(w))))
    blocksize = data.draw(st.integers(1, 4))
    new, _ = sparsegpt(w, h, mask=mask, blocksize=blocksize)
    exact = refit_rows(w, h, mask)
    assert np.all(reconstruction_loss(w, new, h) >= reconstruction_loss(w, exact, h)
                  * (1 - 1e-9) - 1e-12)
    assert np.all(new[mask == 0] == 0)
    prefix = np.ones(w.shape)
    prefix[:, :data.draw(st.integers(0, d))] = 0
    new, _ = sparsegpt(w, h, mask=prefix, blocksize=blocksize)
    np.testing.assert_allclose(new, refit_rows(w, h, prefix), rtol=1e-6, atol=1e-8)


def test_sparsegpt_prunes_exactly_k_and_nm():
    """A sparsity prunes k = ⌊s·R·d + ½⌋ entries; nm=(2, 4) keeps 2 of every 4 inputs."""
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((5, 16)), rng.standard_normal((16, 40))
    _, mask = sparsegpt(w, hessian_of(x), sparsity=0.3, blocksize=5)
    assert (mask == 0).sum() == 24
    _, mask = sparsegpt(w, hessian_of(x), nm=(2, 4), blocksize=8)
    np.testing.assert_array_equal(mask.reshape(5, 4, 4).sum(axis=2), 2)


# ---------------------------------------------------------------------- bad input
def test_too_few_calibration_samples_without_damping_is_a_clear_error():
    """N < d makes 2XXᵀ/N singular: the error says to add samples or damping."""
    x = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(ValueError, match="calibration.*damping"):
        damp(hessian_of(x), 0.0)
    assert np.all(np.linalg.eigvalsh(damp(hessian_of(x), 0.01)) > 0)


@pytest.mark.parametrize("call, match", [
    (lambda: damp(np.ones((2, 3)), 0.01), "square"),
    (lambda: damp(np.eye(2), -1.0), "damping"),
    (lambda: obc_traces(np.ones((2, 3)), np.eye(2)), r"\(3, 3\)"),
    (lambda: obc_traces(np.ones(3), np.eye(3)), "2-D"),
    (lambda: recursive_inverse(np.ones((2, 2)), 0.0), "alpha"),
    (lambda: sparsegpt(np.ones((2, 3)), np.eye(3)), "mask, a sparsity"),
])
def test_bad_input_is_a_value_error_naming_it(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@given(layer_problems(max_inputs=8), st.integers(1, 3), st.data())
def test_group_traces_pay_the_group_formula_and_reach_least_squares(problem, q, data):
    """Deleting input groups from every row at once: each step costs
    ½ Σ_r w_rQ([H⁻¹]_QQ)⁻¹w_rQᵀ on the downdated H⁻¹, the sum after k steps is the rise of
    ‖WX − ŴX‖²/N of the least-squares fit without those columns, and each step is the
    cheapest group then."""
    from nnprune.prune.obc import group_traces

    w, x = problem
    d = q * max(1, w.shape[1] // q)
    w, x = np.resize(w, (len(w), d)), np.resize(x, (d, d + 4)) + np.eye(d, d + 4)
    h = hessian_of(x)
    groups = np.arange(d).reshape(-1, q)
    order, losses = group_traces(w, h, groups)
    assert sorted(order) == list(range(len(groups)))
    k = data.draw(st.integers(0, len(groups)))
    mask = np.ones(w.shape)
    mask[:, groups[order[:k]].ravel()] = 0
    new = refit_rows(w, h, mask)
    assert losses[:k].sum() == pytest.approx(reconstruction_loss(w, new, h).sum(), rel=1e-6,
                                             abs=1e-9)
    if k < len(groups):  # the next step is the cheapest of the groups left
        left = [g for g in range(len(groups)) if g not in order[:k]]
        costs = []
        for g in left:
            trial = mask.copy()
            trial[:, groups[g]] = 0
            costs.append(reconstruction_loss(w, refit_rows(w, h, trial), h).sum())
        assert losses[k] + losses[:k].sum() == pytest.approx(min(costs), rel=1e-6, abs=1e-9)
