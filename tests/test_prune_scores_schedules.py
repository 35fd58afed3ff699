"""Scores and schedules: formulas, seeds, endpoints, monotonicity, lottery rounds."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import prune
from strategies import arrays, shapes, sparsities

pytestmark = pytest.mark.scores


@given(arrays(shapes()), st.integers(0, 2**20))
def test_score_formulas(w, seed):
    g = np.random.default_rng(seed).standard_normal(w.shape)
    assert np.array_equal(prune.magnitude(w), np.abs(w))
    assert np.array_equal(prune.magnitude(w, p=2), w * w)
    assert np.array_equal(prune.taylor(w, g), np.abs(w * g))
    assert np.array_equal(prune.taylor(w, g, squared=True), (w * g) ** 2)
    assert np.array_equal(prune.gradient(g), np.abs(g))


def test_snip_is_normalised_over_all_tensors_and_random_is_seeded():
    rng = np.random.default_rng(0)
    w = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    g = {k: rng.standard_normal(v.shape) for k, v in w.items()}
    s = prune.compute_scores("snip", w, g)
    assert sum(v.sum() for v in s.values()) == pytest.approx(1.0)
    assert np.allclose(s["a"] / s["b"].max(), np.abs(w["a"] * g["a"]) / np.abs(w["b"] * g["b"]).max())
    r1, r2 = prune.compute_scores("random", w, seed=3), prune.compute_scores("random", w, seed=3)
    assert all(np.array_equal(r1[k], r2[k]) for k in w)
    assert not np.array_equal(r1["a"], prune.compute_scores("random", w, seed=4)["a"])


@pytest.mark.parametrize("call, match", [
    (lambda: prune.compute_scores("l0", {"a": np.ones(2)}), "unknown criterion"),
    (lambda: prune.compute_scores("taylor", {"a": np.ones(2)}), "needs grads"),
    (lambda: prune.compute_scores("taylor", {"a": np.ones(2)}, {"b": np.ones(2)}), "missing"),
    (lambda: prune.taylor(np.ones(2), np.ones(3)), "same shape"),
    (lambda: prune.magnitude(np.ones(2), p=3), "p must"),
])
def test_score_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.schedules
@given(sparsities, sparsities, st.integers(0, 50), st.integers(1, 20), st.integers(1, 5))
def test_gradual_schedule_endpoints_monotone_and_decelerating(s1, s2, t0, n, dt):
    """s(t0) = s_i, s(t0 + nΔt) = s_f exactly; non-decreasing; increments non-increasing."""
    s_i, s_f = sorted((s1, s2))
    s = [prune.polynomial_sparsity(t, s_i, s_f, t0, n, dt) for t in range(t0, t0 + n * dt + 1, dt)]
    assert s[0] == s_i and s[-1] == s_f
    inc = np.diff(s)
    assert np.all(inc >= 0) and np.all(np.diff(inc) <= 1e-12)
    assert prune.polynomial_sparsity(t0 + n * dt + 7, s_i, s_f, t0, n, dt) == s_f


@pytest.mark.schedules
@given(st.floats(0.05, 0.9), st.integers(1, 6), st.integers(10, 500))
def test_lottery_rounds_keep_1_minus_p_to_the_k(p, rounds, n):
    """Targets 1 − (1 − p)^r; applied with topk round after round the kept count follows
    the rounding rule of each round's target."""
    targets = prune.lottery_sparsities(p, rounds)
    assert np.allclose(1 - np.array(targets), (1 - p) ** np.arange(1, rounds + 1))
    scores, mask = np.random.default_rng(0).random(n), None
    for s in targets:
        mask = prune.topk_mask(scores, s, mask)
        assert int(mask.sum()) == n - int(np.floor(s * n + 0.5))


@pytest.mark.schedules
def test_iterative_targets_rise_to_the_final_value():
    for kind in ("geometric", "linear"):
        s = prune.iterative_sparsities(0.9, 4, kind)
        assert s[-1] == 0.9 and all(a < b for a, b in zip(s, s[1:]))
    with pytest.raises(ValueError, match="kind"):
        prune.iterative_sparsities(0.9, 3, "cubic")
    with pytest.raises(ValueError, match="rounds"):
        prune.lottery_sparsities(0.2, 0)
