"""Sparsity schedules: how the target sparsity rises, over training steps or over rounds.

- **iterative** (Han et al. 2015): R rounds of prune → fine-tune with rising targets
  s_1 < … < s_R = s_f, "geometric" or "linear" (``iterative_sparsities``);
- **lottery** (Frankle & Carbin 2019): a fraction p of the *remaining* weights each round,
  s_r = 1 − (1 − p)^r (``lottery_sparsities``);
- **gradual** (Zhu & Gupta 2017, "To prune, or not to prune"): during training, from step t0
  and every Δt steps for n updates (``Gradual``, ``polynomial_sparsity``),

      s_t = s_f + (s_i − s_f) · (1 − (t − t0) / (n Δt))³     for t0 ≤ t ≤ t0 + n Δt,

  s_i before t0, s_f after: fast while many weights are redundant, then slower.

A target is a fraction of *all* the entries (not of the survivors) and masks never revive, so
after round r a tensor of n entries has exactly ⌊s_r · n + ½⌋ zeros: unlike rounding
p × survivors each round, the count cannot drift.

>>> [round(s, 4) for s in lottery_sparsities(0.2, 3)]
[0.2, 0.36, 0.488]
>>> polynomial_sparsity(0, 0.0, 0.9, begin_step=0, num_steps=10), \\
...     polynomial_sparsity(100, 0.0, 0.9, begin_step=0, num_steps=10, frequency=10)
(0.0, 0.9)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from nnprune.checks import check_choice, check_int, check_sparsity

KINDS = ("geometric", "linear")


def polynomial_sparsity(step: int, initial_sparsity: float, final_sparsity: float,
                        begin_step: int, num_steps: int, frequency: int = 1,
                        power: float = 3) -> float:
    """The Zhu & Gupta 2017 target at ``step``:
    s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n Δt))^power, t0 = ``begin_step``, n = ``num_steps``
    (the number of updates), Δt = ``frequency``.

    The target changes only at the update steps t0 + jΔt, j = 0..n; between them it holds the
    value of the last update. Exact endpoints: s(t ≤ t0) == s_i and s(t ≥ t0 + nΔt) == s_f
    (returned as given, not computed). Non-decreasing in t; for power ≥ 1 the increments
    between successive updates are non-increasing.
    """
    s_i = check_sparsity(initial_sparsity, "initial_sparsity")
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    if s_f < s_i:
        raise ValueError(f"final_sparsity ({s_f}) must be >= initial_sparsity ({s_i}): "
                         f"pruned weights are never revived, so a target cannot fall")
    step, t0 = check_int(step, "step", 0), check_int(begin_step, "begin_step", 0)
    n, dt = check_int(num_steps, "num_steps", 1), check_int(frequency, "frequency", 1)
    if isinstance(power, bool) or not isinstance(power, numbers.Real) \
            or not 0 < power < math.inf:
        raise ValueError(f"power must be a positive finite number, got {power!r}")
    # task 3.1: the Zhu-Gupta gradual sparsity schedule
    if step <= t0:
        return s_i
    j = (step - t0) // dt  # updates done after the one at t0
    if j == 0:  # still the value of the update at t0, exactly (the formula rounds)
        return s_i
    if j >= n:
        return s_f
    value = s_f + (s_i - s_f) * ((n - j) / n) ** power
    return min(max(value, s_i), s_f)  # rounding cannot step outside [s_i, s_f]
    # end task


def iterative_sparsities(final_sparsity: float, rounds: int,
                         kind: str = "geometric") -> list[float]:
    """The rising targets s_1..s_R of R prune → fine-tune rounds; s_R == ``final_sparsity``.

    - geometric: each round keeps the same fraction 1 − p of the remaining weights, with p
      chosen so that round R reaches s_f: (1 − p)^R = 1 − s_f, s_r = 1 − (1 − s_f)^(r/R).
    - linear: s_r = s_f · r / R.
    """
    return iterative_targets(check_sparsity(final_sparsity, "final_sparsity"),
                             check_int(rounds, "rounds", 1), check_choice(kind, "kind", KINDS))


def iterative_targets(s_f: float, rounds: int, kind: str) -> list[float]:
    """``iterative_sparsities`` on arguments already checked (a ``PruneSpec``'s sparsity)."""
    if kind == "geometric":
        targets = [1 - (1 - s_f) ** (r / rounds) for r in range(1, rounds + 1)]
    else:
        targets = [s_f * r / rounds for r in range(1, rounds + 1)]
    targets[-1] = s_f  # exact, whatever the rounding of the power
    return [min(s, s_f) for s in targets]


def lottery_sparsities(rate: float, rounds: int) -> list[float]:
    """s_r = 1 − (1 − rate)^r for r = 1..rounds: prune ``rate`` of the remaining weights each
    round (Frankle & Carbin 2019 prune 20 % per round)."""
    p = check_sparsity(rate, "rate")
    rounds = check_int(rounds, "rounds", 1)
    return [1 - (1 - p) ** r for r in range(1, rounds + 1)]


def lottery_rate(final_sparsity: float, rounds: int) -> float:
    """The per-round rate p that reaches ``final_sparsity`` in ``rounds`` lottery rounds:
    (1 − p)^R = 1 − s_f, so p = 1 − (1 − s_f)^(1/R).

    >>> round(lottery_rate(0.488, 3), 6)
    0.2
    """
    s_f = check_sparsity(final_sparsity, "final_sparsity")
    return 1 - (1 - s_f) ** (1 / check_int(rounds, "rounds", 1))

@dataclass(frozen=True)
class Gradual:
    """Zhu & Gupta's schedule during training (see polynomial_sparsity)."""

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    num_steps: int
    frequency: int = 1
    power: float = 3

    def __post_init__(self):
        self.sparsity_at(self.begin_step)  # validates every field

    @classmethod
    def ending_at(cls, initial_sparsity: float, final_sparsity: float, begin_step: int,
                  end_step: int, frequency: int = 1, power: float = 3) -> Gradual:
        """The schedule that updates every ``frequency`` steps from ``begin_step`` to
        ``end_step``: n = (end_step − begin_step) / Δt updates, which must be a whole
        number ≥ 1."""
        span = check_int(end_step, "end_step", 0) - check_int(begin_step, "begin_step", 0)
        updates, rest = divmod(span, check_int(frequency, "frequency", 1))
        if updates < 1 or rest:
            raise ValueError(f"end_step − begin_step must be a positive multiple of frequency "
                             f"({frequency}), got begin_step={begin_step}, end_step={end_step}")
        return cls(initial_sparsity, final_sparsity, begin_step, updates, frequency, power)

    @property
    def end_step(self) -> int:
        """The last update step t0 + nΔt, from which the target is s_f."""
        return self.begin_step + self.num_steps * self.frequency

    def is_update(self, step: int) -> bool:
        """True at the update steps t0, t0 + Δt, ..., t0 + nΔt, False at any other step."""
        return (self.begin_step <= step <= self.end_step
                and (step - self.begin_step) % self.frequency == 0)

    def update_steps(self) -> list[int]:
        """The training steps at which the target changes: t0, t0 + Δt, …, t0 + nΔt."""
        return [self.begin_step + j * self.frequency for j in range(self.num_steps + 1)]

    def targets(self) -> list[float]:
        """The target at each update step, from s_i to s_f."""
        return [self.sparsity_at(t) for t in self.update_steps()]

    def sparsity_at(self, step: int) -> float:
        return polynomial_sparsity(step, self.initial_sparsity, self.final_sparsity,
                                   self.begin_step, self.num_steps, self.frequency, self.power)
