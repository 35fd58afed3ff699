"""Schedules: Zhu & Gupta's gradual schedule (exact endpoints, monotone, decelerating, held
between updates), iterative and lottery targets, rounds of top-k, the Gradual object, errors."""
import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.prune import (Gradual, iterative_sparsities, lottery_rate, lottery_sparsities,
                           polynomial_sparsity, prune_count, topk_mask)
from nnprune.prune import schedules as schedules_module
from strategies import rising_sparsities, schedule_steps, sparsities

pytestmark = pytest.mark.schedules

@given(rising_sparsities, schedule_steps, st.sampled_from([1, 2, 3, 4.5]))
def test_gradual_endpoints_monotone_and_decelerating(s_if, t0_n_dt, power):
    """s(t0) == s_i and s(t0 + nΔt) == s_f exactly (==, not approx); at the update steps the
    targets never fall and their increments never grow (power ≥ 1, up to 1e-12)."""
    (s_i, s_f), (t0, n, dt) = s_if, t0_n_dt
    s = [polynomial_sparsity(t, s_i, s_f, t0, n, dt, power) for t in range(t0, t0 + n * dt + 1, dt)]
    assert s[0] == s_i and s[-1] == s_f
    increments = np.diff(s)
    assert np.all(increments >= 0)
    assert np.all(np.diff(increments) <= 1e-12)


@given(rising_sparsities, schedule_steps, st.integers(0, 400))
def test_gradual_is_the_formula_held_between_updates(s_if, t0_n_dt, step):
    """Before t0: s_i; after t0 + nΔt: s_f; in between the value of the last update step
    t0 + jΔt, s_f + (s_i − s_f)(1 − jΔt/(nΔt))³ (to 1e-12)."""
    (s_i, s_f), (t0, n, dt) = s_if, t0_n_dt
    got = polynomial_sparsity(step, s_i, s_f, t0, n, dt)
    if step <= t0:
        assert got == s_i
    elif step >= t0 + n * dt:
        assert got == s_f
    else:
        j = (step - t0) // dt
        assert got == pytest.approx(s_f + (s_i - s_f) * (1 - j * dt / (n * dt)) ** 3, abs=1e-12)
        assert got == polynomial_sparsity(t0 + j * dt, s_i, s_f, t0, n, dt)


@given(sparsities, st.integers(1, 12), st.sampled_from(["geometric", "linear"]))
def test_iterative_targets_rise_to_the_final_value(s_f, rounds, kind):
    """R targets, non-decreasing, the last exactly s_f; geometric keeps the same fraction of
    the remaining weights each round (checked while 1 − s_f ≥ 1e-6: a kept fraction near 1e-16
    has no relative precision left in 1 − s), linear takes equal steps."""
    s = iterative_sparsities(s_f, rounds, kind)
    assert len(s) == rounds and s[-1] == s_f
    assert all(a <= b for a, b in zip(s, s[1:]))
    kept = 1 - np.array([0.0] + s)
    if kind == "linear":
        assert np.allclose(np.diff([0.0] + s), s_f / rounds)
    elif 1 - s_f >= 1e-6:
        assert np.allclose(kept[1:] / kept[:-1], (1 - s_f) ** (1 / rounds))


@given(st.floats(0.0, 0.95), st.integers(1, 8))
def test_lottery_targets_keep_1_minus_p_to_the_r(p, rounds):
    """After r rounds at rate p the kept fraction is (1 − p)^r."""
    s = lottery_sparsities(p, rounds)
    assert np.allclose(1 - np.array(s), (1 - p) ** np.arange(1, rounds + 1), rtol=1e-12)


@given(st.floats(0.05, 0.9), st.integers(1, 6), st.integers(1, 500), st.integers(0, 2**16))
def test_topk_round_after_round_follows_the_rounding_rule(p, rounds, n, seed):
    """Applying topk_mask with each lottery target in turn (the mask of the last round passed
    in) on n entries leaves exactly n − ⌊s_r·n + ½⌋ kept after round r — the rounding rule on
    the cumulative target, within ½ of n(1 − p)^r — and each mask nests in the previous."""
    scores = np.random.default_rng(seed).random(n)
    mask = None
    for r, s in enumerate(lottery_sparsities(p, rounds), start=1):
        new = topk_mask(scores, s, mask)
        assert int(new.sum()) == n - prune_count(n, s)
        assert abs(new.sum() - n * (1 - p) ** r) <= 0.5 + 1e-9
        assert mask is None or np.all(new <= mask)
        mask = new


def test_gradual_object():
    """Gradual's update steps are t0 + jΔt, j = 0..n, ``is_update`` is true exactly there, its
    targets are polynomial_sparsity at them, and it holds the last value between updates."""
    grad = Gradual(0.1, 0.8, begin_step=10, num_steps=4, frequency=5)
    assert grad.update_steps() == [10, 15, 20, 25, 30] and grad.end_step == 30
    assert [t for t in range(50) if grad.is_update(t)] == grad.update_steps()
    assert grad.targets()[0] == 0.1 and grad.targets()[-1] == 0.8
    expected = [polynomial_sparsity(t, 0.1, 0.8, 10, 4, 5) for t in grad.update_steps()]
    assert grad.targets() == expected
    assert grad.sparsity_at(17) == grad.sparsity_at(15)


@given(rising_sparsities, schedule_steps)
def test_gradual_ending_at_is_the_same_schedule(s_if, t0_n_dt):
    """Gradual.ending_at(t0, t0 + nΔt, Δt) is Gradual(t0, n, Δt)."""
    (s_i, s_f), (t0, n, dt) = s_if, t0_n_dt
    assert Gradual.ending_at(s_i, s_f, t0, t0 + n * dt, dt) == Gradual(s_i, s_f, t0, n, dt)


@given(sparsities, st.integers(1, 12))
def test_lottery_rate_reaches_the_final_sparsity(s_f, rounds):
    """``rounds`` lottery rounds at lottery_rate(s_f, rounds) end at s_f (to 1e-9)."""
    rate = lottery_rate(s_f, rounds)
    assert 0 <= rate <= 1
    assert lottery_sparsities(rate, rounds)[-1] == pytest.approx(s_f, abs=1e-9)


def test_docstring_examples():
    """The examples in the module docstring run as written."""
    result = doctest.testmod(schedules_module)
    assert result.attempted >= 2 and result.failed == 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: polynomial_sparsity(5, 0.9, 0.5, 0, 10), ValueError, "must be >= initial_sparsity"),
    (lambda: polynomial_sparsity(5, 0.0, 1.5, 0, 10), ValueError, "final_sparsity"),
    (lambda: polynomial_sparsity(5, float("nan"), 0.5, 0, 10), ValueError, "initial_sparsity"),
    (lambda: polynomial_sparsity(5, "0", 0.5, 0, 10), TypeError, "initial_sparsity"),
    (lambda: polynomial_sparsity(-1, 0.0, 0.5, 0, 10), ValueError, "step"),
    (lambda: polynomial_sparsity(5, 0.0, 0.5, 0, 0), ValueError, "num_steps"),
    (lambda: polynomial_sparsity(5, 0.0, 0.5, 0, 10, frequency=0), ValueError, "frequency"),
    (lambda: polynomial_sparsity(5, 0.0, 0.5, 1.5, 10), ValueError, "begin_step"),
    (lambda: polynomial_sparsity(5, 0.0, 0.5, 0, 10, power=0), ValueError, "power"),
    (lambda: polynomial_sparsity(5, 0.0, 0.5, 0, 10, power=float("inf")), ValueError, "power"),
    (lambda: iterative_sparsities(0.9, 3, "cubic"), ValueError, "kind"),
    (lambda: iterative_sparsities(0.9, 0), ValueError, "rounds"),
    (lambda: iterative_sparsities(True, 2), TypeError, "final_sparsity"),
    (lambda: lottery_sparsities(0.2, 0), ValueError, "rounds"),
    (lambda: lottery_sparsities(1.2, 3), ValueError, "rate"),
    (lambda: lottery_rate(0.9, 0), ValueError, "rounds"),
    (lambda: lottery_rate(1.5, 2), ValueError, "final_sparsity"),
    (lambda: Gradual(0.5, 0.2, 0, 10), ValueError, "initial_sparsity"),
    (lambda: Gradual(0.0, 0.5, 0, 10).sparsity_at(-1), ValueError, "step"),
    (lambda: Gradual.ending_at(0.0, 0.5, 10, 10, 5), ValueError, "positive multiple"),
    (lambda: Gradual.ending_at(0.0, 0.5, 0, 12, 5), ValueError, "positive multiple"),
    (lambda: Gradual.ending_at(0.0, 0.5, 0, 10, 0), ValueError, "frequency"),
])
def test_bad_input_is_rejected(call, error, match):
    """Falling or out-of-range targets, bad steps, counts, powers and kinds: clear errors."""
    with pytest.raises(error, match=match):
        call()
