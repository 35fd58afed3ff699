"""Sparsity schedules: how the target sparsity rises over training or over rounds.

- Gradual (Zhu & Gupta 2017): s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³ for t0 ≤ t ≤ t0 + nΔt,
  updated every Δt steps; s_i before t0, s_f after.
- Iterative (Han et al. 2015): a rising target per prune → fine-tune round.
- Lottery (Frankle & Carbin 2019): prune a fraction p of the remaining weights each round,
  so after r rounds the kept fraction is (1 − p)^r.
"""
from __future__ import annotations

import numpy as np

from nnprune.prune.masks import check_sparsity


def _int(name, v, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def polynomial_sparsity(step: int, initial_sparsity: float, final_sparsity: float, begin_step: int,
                        num_steps: int, frequency: int = 1, power: int = 3) -> float:
    """The Zhu & Gupta target at ``step``; exact endpoints s(t0) = s_i, s(t0 + nΔt) = s_f.

    ``num_steps`` is n, the number of pruning updates; ``frequency`` is Δt. Between updates the
    target holds the value of the last update step.
    """
    s_i, s_f = check_sparsity(initial_sparsity, "initial_sparsity"), check_sparsity(final_sparsity, "final_sparsity")
    step, t0 = _int("step", step, 0), _int("begin_step", begin_step, 0)
    n, dt = _int("num_steps", num_steps, 1), _int("frequency", frequency, 1)
    if step <= t0:
        return s_i
    if step >= t0 + n * dt:
        return s_f
    t = t0 + ((step - t0) // dt) * dt  # the last update step
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** power


def iterative_sparsities(final_sparsity: float, rounds: int, kind: str = "geometric") -> list[float]:
    """Targets for ``rounds`` prune → fine-tune rounds, the last exactly ``final_sparsity``.

    geometric: the kept fraction shrinks by the same factor each round, (1 − s_f)^(r/R);
    linear: s_f · r / R.
    """
    s_f, rounds = check_sparsity(final_sparsity, "final_sparsity"), _int("rounds", rounds, 1)
    if kind == "linear":
        out = [s_f * r / rounds for r in range(1, rounds + 1)]
    elif kind == "geometric":
        out = [1 - (1 - s_f) ** (r / rounds) for r in range(1, rounds + 1)]
    else:
        raise ValueError(f"kind must be 'geometric' or 'linear', got {kind!r}")
    out[-1] = s_f
    return out


def lottery_sparsities(rate: float, rounds: int) -> list[float]:
    """1 − (1 − rate)^r for r = 1..rounds: prune ``rate`` of what remains each round."""
    p, rounds = check_sparsity(rate, "rate"), _int("rounds", rounds, 1)
    return [1 - (1 - p) ** r for r in range(1, rounds + 1)]
