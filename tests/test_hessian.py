"""OBD and OBS are exact on quadratics: their predicted loss increase is the true one."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.prune.hessian import obd_saliency, obs_prune, obs_saliency, obs_update

pytestmark = pytest.mark.hessian


def quadratic(seed, n):
    """A random SPD Hessian H and minimum w*: L(w) = ½ (w − w*)ᵀ H (w − w*), L(w*) = 0."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    h = a @ a.T + 0.5 * np.eye(n)
    w_star = rng.standard_normal(n)
    return h, w_star, (lambda w: 0.5 * (w - w_star) @ h @ (w - w_star))


@given(st.integers(0, 2**20), st.integers(1, 8))
def test_obd_saliency_is_the_exact_cost_of_deleting_one_weight(seed, n):
    """At the minimum of a quadratic, zeroing w_k alone costs exactly ½ h_kk w_k², for any H."""
    h, w, loss = quadratic(seed, n)
    saliency = obd_saliency(w, np.diag(h))
    for k in range(n):
        deleted = w.copy()
        deleted[k] = 0
        assert loss(deleted) == pytest.approx(saliency[k], rel=1e-10, abs=1e-12)


@given(st.integers(0, 2**20), st.integers(2, 8))
def test_obd_is_exact_for_several_deletions_when_h_is_diagonal(seed, n):
    """With diagonal H there are no cross terms: deleting a set costs the sum of saliencies."""
    rng = np.random.default_rng(seed)
    h_diag, w = rng.random(n) + 0.1, rng.standard_normal(n)
    drop = rng.random(n) < 0.5
    loss = 0.5 * np.sum(h_diag[drop] * w[drop] ** 2)
    assert obd_saliency(w, h_diag)[drop].sum() == pytest.approx(loss, rel=1e-12, abs=1e-15)


@given(st.integers(0, 2**20), st.integers(2, 8), st.data())
def test_obs_update_is_the_constrained_minimum(seed, n, data):
    """OBS: w + δw has w_q = 0, costs exactly L_q, and no other point with w_q = 0 costs less."""
    h, w, loss = quadratic(seed, n)
    q = data.draw(st.integers(0, n - 1))
    new, cost = obs_update(w, np.linalg.inv(h), q)
    assert new[q] == 0
    assert loss(new) == pytest.approx(cost, rel=1e-8, abs=1e-10)
    assert obs_saliency(w, np.linalg.inv(h))[q] == pytest.approx(cost, rel=1e-12)
    # the reduced problem solved directly: minimise over the other n − 1 weights
    keep = np.arange(n) != q
    direct = np.zeros(n)
    direct[keep] = w[keep] + np.linalg.solve(h[np.ix_(keep, keep)], h[keep, q] * w[q])
    np.testing.assert_allclose(new, direct, rtol=1e-8, atol=1e-10)


@given(st.integers(0, 2**20), st.integers(2, 10), st.floats(0.0, 1.0))
def test_sequential_obs_reaches_the_best_weights_for_the_set_it_prunes(seed, n, sparsity):
    """After k OBS deletions the survivors are the exact least-cost fit with those k zeroed,
    and the reported δL is the true loss increase."""
    h, w, loss = quadratic(seed, n)
    new, mask, cost = obs_prune(w, h, sparsity)
    k = int(np.floor(sparsity * n + 0.5))
    assert int((mask == 0).sum()) == k and np.all(new[mask == 0] == 0)
    assert loss(new) == pytest.approx(cost, rel=1e-7, abs=1e-9)
    keep = mask == 1
    best = np.zeros(n)
    if keep.any():
        best[keep] = w[keep] + np.linalg.solve(h[np.ix_(keep, keep)], h[np.ix_(keep, ~keep)] @ w[~keep])
    np.testing.assert_allclose(new, best, rtol=1e-6, atol=1e-8)


@given(st.integers(0, 2**20), st.integers(3, 8))
def test_obs_never_costs_more_than_obd_for_the_same_deletions(seed, n):
    """Compensating the survivors can only help: OBS's cost ≤ deleting the same set without it."""
    h, w, loss = quadratic(seed, n)
    new, mask, cost = obs_prune(w, h, 0.5)
    assert cost <= loss(np.where(mask == 1, w, 0.0)) + 1e-9


def test_obs_prune_keeps_existing_zeros_and_counts_them():
    """Entries already pruned by ``mask`` stay pruned and count toward k."""
    h, w, _ = quadratic(3, 6)
    old = np.array([1, 0, 1, 1, 1, 1])
    new, mask, _ = obs_prune(w, h, 0.5, mask=old)
    assert mask[1] == 0 and int((mask == 0).sum()) == 3 and np.all(mask <= old)


@pytest.mark.parametrize("call, match", [
    (lambda: obd_saliency(np.ones(3), np.ones(2)), "h_diag"),
    (lambda: obd_saliency(np.array([np.nan]), np.ones(1)), "finite"),
    (lambda: obs_saliency(np.ones(2), np.eye(3)), "h_inv"),
    (lambda: obs_saliency(np.ones(2), -np.eye(2)), "positive"),
    (lambda: obs_update(np.ones(2), np.eye(2), 2), "q"),
    (lambda: obs_update(np.ones((2, 2)), np.eye(2), 0), "1-D"),
    (lambda: obs_prune(np.ones(2), np.eye(2), 1.5), "sparsity"),
    (lambda: obs_prune(np.ones(2), np.eye(2), 0.5, mask=np.ones(3)), "mask"),
])
def test_bad_input_is_rejected(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_singular_hessian_is_refused_unless_damped():
    """A rank-deficient H gives a clear error; damping makes OBS well-posed and still exact
    for the damped quadratic."""
    x = np.random.default_rng(0).standard_normal((10, 3))
    x = np.hstack([x, x[:, :1]])  # a repeated input: H = XᵀX is singular
    h = x.T @ x
    w = np.array([1.0, -0.5, 0.2, 0.3])
    with pytest.raises(ValueError, match="ill-conditioned"):
        obs_prune(w, h, 0.5)
    new, mask, cost = obs_prune(w, h, 0.5, damping=0.01)
    damped = h + 0.01 * np.mean(np.diag(h)) * np.eye(4)
    assert cost == pytest.approx(0.5 * (new - w) @ damped @ (new - w), rel=1e-9)
    with pytest.raises(ValueError, match="damping"):
        obs_prune(w, h, 0.5, damping=-1)
