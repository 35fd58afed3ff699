"""Argument checks shared by the library: each turns a value into what the code needs, or
raises an error that names the argument, says what was expected and shows what came.

A check belongs where a value **enters** (a public function, a spec's constructor); the
functions behind that door trust what they are given. A value of the wrong *type* raises
TypeError, one out of range ValueError (``check_int`` and ``check_choice``: ValueError for
both, as for counts and names of options).

>>> check_sparsity(0.5), check_int(3, "rounds", 1), check_choice("l1", "reduce", ("l1", "l2"))
(0.5, 3, 'l1')
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nnprune.foreign import reject_foreign


def _is_real(value: Any) -> bool:
    """A real number that is not a bool (True is an int to Python, never a sparsity here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
    """``sparsity`` as a float, or a clear error: a real number (not bool) in [0, 1]."""
    if not _is_real(sparsity):
        raise TypeError(f"{name} must be a real number in [0, 1] (a fraction of zeros), "
                        f"got {sparsity!r} of type {type(sparsity).__name__}")
    if not 0.0 <= float(sparsity) <= 1.0:  # NaN fails both comparisons
        raise ValueError(f"{name} must be in [0, 1] (a fraction of zeros), got {sparsity!r}")
    return float(sparsity)


def check_probability(p: Any, name: str, high_open: bool = False) -> float:
    """``p`` as a float in [0, 1] (or [0, 1) with ``high_open``), or a clear error."""
    if not _is_real(p):
        raise TypeError(f"{name} must be a probability (a real number), got {p!r} of type "
                        f"{type(p).__name__}")
    if not (0.0 <= float(p) < 1.0 if high_open else 0.0 <= float(p) <= 1.0):
        raise ValueError(f"{name} must be in [0, {'1)' if high_open else '1]'}, got {p!r}")
    return float(p)


def check_real(value: Any, name: str) -> float:
    """``value`` as a float, or a clear error: a real number (not bool), not NaN."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r} of type "
                        f"{type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)


def check_number(value: Any, name: str, minimum: float = 0.0, strict: bool = False,
                 maximum: float | None = None, high_open: bool = False) -> float:
    """``value`` as a float, or a clear error: a finite real number (not bool) >= ``minimum``
    (> with ``strict``) and, if given, <= ``maximum`` (< with ``high_open``): a TypeError
    for another type, a ValueError out of range."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    low = value > minimum if strict else value >= minimum
    high = maximum is None or (value < maximum if high_open else value <= maximum)
    if not (math.isfinite(value) and low and high):
        want = f"{'>' if strict else '>='} {minimum:g}" if maximum is None else \
            f"in {'(' if strict else '['}{minimum:g}, {maximum:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number {want}, got {value!r}")
    return float(value)


def check_int(value: Any, name: str, minimum: int = 0) -> int:
    """``value`` as an int, or a ValueError: an integer (not bool) >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_batches(batches: Any, name: str = "grads_per_batch") -> Sequence:
    """``batches`` if it is a non-empty list (or tuple) of per-batch arrays, else a clear error
    (an array is refused: its first axis is not a list of batches)."""
    if isinstance(batches, np.ndarray) or not isinstance(batches, Sequence):
        raise TypeError(f"{name} must be a list of gradient arrays (one per batch), "
                        f"got {type(batches).__name__}")
    if not batches:
        raise ValueError(f"{name} is empty: give the gradient of at least one batch")
    return batches


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool, else a TypeError (1 and "yes" are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if not isinstance(value, type(choices[0])) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_mapping(value: Any, name: str, of: str) -> Mapping:
    """``value`` if it is a mapping, else a TypeError saying what it should map (``of``)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping {of}, got {type(value).__name__}")
    return value


def check_names(names: Any, name: str) -> tuple[str, ...]:
    """``names`` (one str or an iterable of str) as a tuple of str, or a TypeError."""
    if not isinstance(names, (str, Iterable)):
        raise TypeError(f"{name} must be a parameter name or a list of them, got {names!r}")
    names = (names,) if isinstance(names, str) else tuple(names)
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold parameter names (str), got {item!r}")
    return names


def check_known(names: Iterable[str], known: Iterable[str], name: str, what: str,
                plural: str) -> None:
    """A ValueError when one of ``names`` is not in ``known``; ``what`` says what one known
    name is ("a prunable weight of the model"), ``plural`` what they all are."""
    known = list(known)
    for item in names:
        if item not in known:
            raise ValueError(f"{name} names {item!r}, which is not {what}; {plural} are "
                             f"{known}")


def check_finite(array: Any, what: str) -> None:
    """A ValueError naming ``what`` when a float array holds NaN or infinity."""
    array = np.asarray(array)
    if array.dtype.kind in "fc":
        bad = ~np.isfinite(array)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{what} has {int(bad.sum()):,} NaN or infinite values (the first "
                             f"{array[where]} at index {where}): it cannot be ranked; was the "
                             f"model trained to divergence?")


def check_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """``scores`` as a float array (integers become float64), or a clear error: a real-valued
    numeric array (not bool) with no NaN or infinity."""
    reject_foreign(scores, name, "array")
    scores = np.asarray(scores)
    if scores.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {scores.dtype}")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite (no NaN or infinity), got {scores[where]} "
                         f"at index {where}")
    return scores


def check_mask(mask: Any, shape: tuple[int, ...], name: str = "mask",
               dtype: np.dtype = np.float64) -> np.ndarray:
    """The existing mask as a 0./1. array of ``dtype`` (all ones when None), or a clear error:
    the same shape as the scores, bool or numeric, only 0 and 1."""
    if not isinstance(shape, tuple) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) and d >= 0
            for d in shape):
        raise TypeError(f"shape must be a tuple of ints >= 0 (the scores' shape), got {shape!r}")
    if mask is None:
        return np.ones(shape, dtype)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have the scores' shape {tuple(shape)}, got {mask.shape}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a bool or numeric 0/1 array, got dtype {mask.dtype}")
    bad = (mask != 0) & (mask != 1)  # NaN is bad too
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must contain only 0 and 1, got {mask[where]} at index {where}")
    return mask.astype(dtype)
